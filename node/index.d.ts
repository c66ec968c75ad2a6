// Type declarations for eventsource-native (hand-written; the native module is private).
/// <reference types="node" />

/** The constructor's dictionary: the WHATWG `withCredentials` plus this package's extensions. */
export interface EventSourceInit {
  /** Keep a cookie jar for this source and send credentials. Reflected by `withCredentials`. */
  withCredentials?: boolean
  /** Extra request headers, sent on every (re)connection (`Accept` is fixed; `Last-Event-ID` is managed). */
  headers?: Record<string, string | readonly string[]> | Iterable<readonly [string, string]>
  /** Request method (default `GET`). */
  method?: string
  /** Request body, resent on every reconnection. */
  body?: string | ArrayBuffer | ArrayBufferView
  /** Initial `Last-Event-ID` (resume from a stored ID). */
  lastEventId?: string
  /** Initial reconnection time in ms (the stream's `retry:` overrides it). Default 3000. */
  retry?: number
  /** Ceiling in ms for the backed-off delay after consecutive failures. Default 30000. */
  maxRetry?: number
  /** Delay multiplier after each consecutive failure, >= 1 (1 disables backoff). Default 2. */
  backoff?: number
  /** Time allowed to connect, in ms; `null` or `Infinity` waits indefinitely. Default 10000. */
  connectTimeout?: number | null
  /** No byte for this many ms on an open stream → reconnect. Default: no limit. */
  readTimeout?: number | null
  /**
   * Time allowed for the response head, in ms: a server that accepts and never answers fails
   * the attempt (a `timeout` error, then a reconnection). `null` or `Infinity` waits
   * indefinitely. Default 30000.
   */
  responseTimeout?: number | null
  /** Largest line or event in bytes; beyond it the connection fails. Default 16 MiB. */
  maxEventSize?: number
  /** Redirects followed before the connection fails. Default 10. */
  maxRedirects?: number
  /**
   * Follow a redirect from `https:` to plain `http:`. Default false: such a redirect fails the
   * source (`unsupported_scheme`), as it would send the request in clear text.
   */
  allowHttpsDowngrade?: boolean
  /** Proxy URL for all requests. Default: from the environment (`HTTPS_PROXY`, `NO_PROXY`, ...). */
  proxy?: string
  /** A PEM file of extra trusted root certificates. */
  caCerts?: string
  /** Accept any TLS certificate. Dangerous; for testing only. */
  acceptInvalidCerts?: boolean
  /**
   * The HTTP client: `"default"` (HTTP/1.1 and HTTP/2, http/https/socks5 proxies) or `"lean"`
   * (the built-in HTTP/1.1 client: the least memory and CPU per source; http proxies only).
   */
  transport?: 'default' | 'lean'
  /** Speak HTTP/2 without TLS to `http://` URLs (h2c). Default transport only. */
  http2PriorKnowledge?: boolean
  /** A PEM file (path or `file:` URL) with the client certificate chain, for mutual TLS. */
  clientCert?: string | URL
  /** The PEM file of the client certificate's key. Default: looked for in `clientCert`'s file. */
  clientKey?: string | URL
  /**
   * Whether the source reconnects. Default (`undefined`): a GET source reconnects as the spec
   * says; a source with another method does not, so its body is never sent twice.
   */
  reconnect?: boolean
  /** Consecutive failed attempts after which the source gives up; `null`/`Infinity` (default): no limit. */
  maxReconnects?: number | null
  /** Whether a failure of the very first connection is retried (as the spec says). Default true. */
  retryInitial?: boolean
  /** The `User-Agent` header; `null` sends none. Default `eventsource-native/<version>`. */
  userAgent?: string | null
  /** How many bytes of a fatal HTTP error's body are kept (`ErrorEvent.body`). Default 64 KiB. */
  maxErrorBody?: number
  /** Aborting it closes the source (an aborted signal: closed at once, no event). */
  signal?: AbortSignal
}

/** Stable names of what went wrong, on `error` events (`event.kind`). */
export type EventSourceErrorKind =
  | 'invalid_url'
  | 'invalid_option'
  | 'unsupported_scheme'
  | 'connect'
  | 'timeout'
  | 'network'
  | 'stream_ended'
  | 'http_status'
  | 'content_type'
  | 'too_many_redirects'
  | 'event_too_large'
  | 'forked'

/** What `new ErrorEvent(type, init)` takes (the library makes these; tests may too). */
export interface ErrorEventInit extends EventInit {
  message?: string
  kind?: EventSourceErrorKind
  /** The HTTP status (`code` is accepted as its other name). */
  status?: number
  code?: number
  /** The headers of the response the error is about. */
  headers?: ConstructorParameters<typeof Headers>[0] | null
  /** The start of that response's body. */
  body?: string | null
}

/** The class of `error` events: an `Event` with the cause attached. */
export declare class ErrorEvent extends Event {
  constructor(type: string, init?: ErrorEventInit)
  /** What went wrong, for people. */
  readonly message: string
  /** The HTTP status, when the error has one (e.g. 500, or 200 for a wrong Content-Type). */
  readonly code: number | undefined
  /** The same as `code`. */
  readonly status: number | undefined
  readonly kind: EventSourceErrorKind
  /**
   * The headers of the response the error is about (`http_status`, `content_type`): a fetch
   * `Headers` with lowercase names, e.g. `headers.get('retry-after')`. Byte strings, as fetch
   * gives them. `null` for an error that is not about a response (connect, network, ...).
   * Treat it as read-only.
   */
  readonly headers: Headers | null
  /**
   * The start of that response's body: at most `maxErrorBody` bytes (64 KiB by default),
   * decoded as UTF-8 with U+FFFD for invalid bytes (so a cut inside a character shows as
   * U+FFFD), e.g. an API's JSON error for `JSON.parse`. `''` for an empty body; `null` for an
   * error that is not about a response.
   */
  readonly body: string | null
}

/** Another name for `ErrorEvent`. */
export type EventSourceErrorEvent = ErrorEvent

/** What `for await` over a source throws when the source fails for good. */
export declare class EventSourceError extends Error {
  constructor(
    message: string,
    options?: {
      kind?: EventSourceErrorKind
      status?: number
      headers?: Headers | null
      body?: string | null
      cause?: unknown
    },
  )
  readonly name: 'EventSourceError'
  readonly kind: EventSourceErrorKind | undefined
  readonly status: number | undefined
  /** As `ErrorEvent.headers`: the response's headers for an error about a response, else null. */
  readonly headers: Headers | null
  /** As `ErrorEvent.body`: the start of the response's body, else null. */
  readonly body: string | null
  /** The `error` event of the failure. */
  readonly cause?: unknown
}

/** `addEventListener` options (as in the DOM). */
export interface EventSourceListenerOptions {
  capture?: boolean
  once?: boolean
  passive?: boolean
  signal?: AbortSignal
}

export interface EventSourceEventMap {
  open: Event
  message: MessageEvent
  error: ErrorEvent
}

/** A WHATWG EventSource: `globalThis.EventSource = EventSource` makes browser code work. */
export declare class EventSource extends EventTarget {
  constructor(url: string | URL, init?: EventSourceInit)

  static readonly CONNECTING: 0
  static readonly OPEN: 1
  static readonly CLOSED: 2
  readonly CONNECTING: 0
  readonly OPEN: 1
  readonly CLOSED: 2

  /** The serialized URL. */
  readonly url: string
  readonly withCredentials: boolean
  /** The state of the last delivered event; CLOSED right after `close()`. */
  readonly readyState: 0 | 1 | 2
  /**
   * The headers of the response that opened the connection of the last delivered `open` (a
   * fetch `Headers`, lowercase names; the same object until the next `open`); `null` before
   * the first `open`. Treat it as read-only.
   */
  readonly responseHeaders: Headers | null

  onopen: ((this: EventSource, ev: Event) => any) | null
  onmessage: ((this: EventSource, ev: MessageEvent) => any) | null
  onerror: ((this: EventSource, ev: ErrorEvent) => any) | null

  addEventListener<K extends keyof EventSourceEventMap>(
    type: K,
    listener: (this: EventSource, ev: EventSourceEventMap[K]) => any,
    options?: boolean | EventSourceListenerOptions,
  ): void
  addEventListener(
    type: string,
    listener: (this: EventSource, ev: MessageEvent) => any,
    options?: boolean | EventSourceListenerOptions,
  ): void
  addEventListener(
    type: string,
    listener: ((ev: Event) => any) | { handleEvent(ev: Event): any } | null,
    options?: boolean | EventSourceListenerOptions,
  ): void
  removeEventListener<K extends keyof EventSourceEventMap>(
    type: K,
    listener: (this: EventSource, ev: EventSourceEventMap[K]) => any,
    options?: boolean | { capture?: boolean },
  ): void
  removeEventListener(
    type: string,
    listener: (this: EventSource, ev: MessageEvent) => any,
    options?: boolean | { capture?: boolean },
  ): void
  removeEventListener(
    type: string,
    listener: ((ev: Event) => any) | { handleEvent(ev: Event): any } | null,
    options?: boolean | { capture?: boolean },
  ): void

  /** Stops the source: no event is dispatched afterwards, and the process may exit. */
  close(): void

  /**
   * `for await (const e of source)`: every MessageEvent (`message` and named types), in order,
   * until the source is closed; throws an `EventSourceError` when it fails for good. `break`
   * closes the source.
   */
  [Symbol.asyncIterator](): AsyncIterableIterator<MessageEvent>
}

/** The version of the Rust core the addon was built from. */
export declare const version: string

export default EventSource
