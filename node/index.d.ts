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
  /** Largest line or event in bytes; beyond it the connection fails. Default 16 MiB. */
  maxEventSize?: number
  /** Redirects followed before the connection fails. Default 10. */
  maxRedirects?: number
  /** Proxy URL for all requests. Default: from the environment (`HTTPS_PROXY`, `NO_PROXY`, ...). */
  proxy?: string
  /** A PEM file of extra trusted root certificates. */
  caCerts?: string
  /** Accept any TLS certificate. Dangerous; for testing only. */
  acceptInvalidCerts?: boolean
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

/** The `error` event: a plain `Event` with the cause attached. */
export interface EventSourceErrorEvent extends Event {
  /** The HTTP status, when the error has one (e.g. 500, or 200 for a wrong Content-Type). */
  readonly code: number | undefined
  /** What went wrong, for people. */
  readonly message: string
  readonly kind: EventSourceErrorKind
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
  error: EventSourceErrorEvent
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

  onopen: ((this: EventSource, ev: Event) => any) | null
  onmessage: ((this: EventSource, ev: MessageEvent) => any) | null
  onerror: ((this: EventSource, ev: EventSourceErrorEvent) => any) | null

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
}

/** The version of the Rust core the addon was built from. */
export declare const version: string

export default EventSource
