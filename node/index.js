'use strict'
// eventsource-native: a WHATWG EventSource for Node.js, backed by the Rust core.
//
// The class extends the real EventTarget and dispatches real MessageEvents and Events. The
// native half (NativeSource, private) runs the connection on the library's own threads and
// wakes this thread through a threadsafe function; each wake-up takes every queued event as
// one string plus a compact word stream (see node/src/lib.rs), and this file turns them into
// events, one dispatch at a time, checking before each that close() was not called, with a
// microtask checkpoint between two events (the spec queues a task per event).

const path = require('node:path')
const util = require('node:util')
const { getEventListeners } = require('node:events')

// The addon: eventsource-native.node in this folder when there is one (built from source: a
// checkout, or an install that found no prebuilt), else the prebuilt one of the optional
// dependency for this platform (eventsource-native-linux-x64-gnu, ...; see scripts/install.js).
function loadNative() {
  const local = path.join(__dirname, 'eventsource-native.node')
  if (require('node:fs').existsSync(local)) {
    try {
      return require(local)
    } catch (err) {
      const e = new Error(
        `eventsource-native: cannot load the native addon ${local} (${err.message}). ` +
          'It was built from source: reinstall the package, or run `npm rebuild eventsource-native`.',
      )
      e.cause = err
      throw e
    }
  }
  const { platform, arch } = process
  let triple = `${platform}-${arch}`
  if (platform === 'linux') {
    // musl or glibc: /usr/bin/ldd says which (a glibc script, or musl's loader), else the
    // process report (slower: ~40 ms).
    let glibc
    try {
      glibc = !require('node:fs').readFileSync('/usr/bin/ldd', 'latin1').includes('musl')
    } catch {
      glibc = Boolean(process.report?.getReport?.().header?.glibcVersionRuntime)
    }
    triple += glibc ? '-gnu' : '-musl'
  } else if (platform === 'win32') {
    triple += '-msvc'
  }
  const prebuilt = `eventsource-native-${triple}`
  try {
    return require(prebuilt)
  } catch (err) {
    const missing = err.code === 'MODULE_NOT_FOUND' && err.message.includes(prebuilt)
    const e = new Error(
      `eventsource-native: no native addon: ${
        missing ? `the prebuilt package ${prebuilt} is not installed` : `${prebuilt} does not load (${err.message})`
      }, and none was built from source in ${__dirname}. Reinstall without --omit=optional ` +
        '(or --no-optional), or with Rust (cargo) on PATH so the install script builds one ' +
        '(`npm rebuild eventsource-native`).',
    )
    e.cause = err
    throw e
  }
}

const { NativeSource, nativeVersion, enableLogging } = loadNative()

// ---------------------------------------------------------------------------------------------
// Logging: `NODE_DEBUG=eventsource-native` (util.debuglog's rule: a comma-separated list of
// sections, `*` wildcards) turns on the core's records (connecting, open, reconnecting, failed,
// closed). The native side writes them to stderr itself, in debuglog's format
// (`EVENTSOURCE-NATIVE <pid>: LEVEL message`), from the thread that logs: a record is never
// lost at exit and never waits for this thread. Otherwise nothing is installed and the core
// does not even format its records.
const SECTION = 'eventsource-native'

if (util.debuglog(SECTION).enabled) enableLogging(debugPrefix())

// What util.debuglog puts before a message: the section in capitals and the pid, colored as
// debuglog colors it (when stderr is a color terminal, or FORCE_COLOR says so).
function debugPrefix() {
  const stderr = process.stderr
  const depth = () => require('node:tty').WriteStream.prototype.getColorDepth.call(stderr)
  let colors
  if (process.env.FORCE_COLOR !== undefined) colors = depth() > 2
  else colors = Boolean(stderr.isTTY) && (typeof stderr.getColorDepth === 'function' ? stderr.getColorDepth() > 2 : true)
  return `${SECTION.toUpperCase()} ${util.inspect(process.pid, { colors })}: `
}

const CONNECTING = 0
const OPEN = 1
const CLOSED = 2

// Word-stream opcodes, as in node/src/lib.rs.
const OP_TYPE = 0x80000001
const OP_ID = 0x80000002
const OP_ORIGIN = 0x80000003
const OP_OPEN = 0x80000004
const OP_ERROR = 0x80000005
const OP_ERROR_ANSWER = 0x80000006
const MSG_LIMIT = 0x80000000

// One word buffer for every source: take() fills it and the dispatch loop reads it before the
// next take() can run (take() is only ever called from a fresh task, never from a listener).
const META = new Uint32Array(1 << 15)
// Chunks (one take() each, at most ~96 KiB of text or ~4,600 events) per task.
const DRAIN_CHUNKS = 16

// ---------------------------------------------------------------------------------------------
// Options: the WHATWG dictionary (withCredentials) plus this package's extensions. A key that is
// not an option throws (naming what to use instead), so a misspelt or foreign option is never
// ignored silently.

function fail(Kind, what, msg) {
  return new Kind(`Failed to construct 'EventSource': ${what} ${msg}`)
}

function number(init, key, { min, integer = false, max = Number.MAX_SAFE_INTEGER }) {
  const v = init[key]
  if (v === undefined) return undefined
  if (typeof v !== 'number' || Number.isNaN(v)) throw fail(TypeError, `option ${key}`, 'must be a number')
  if (v < min || v > max || (integer && !Number.isInteger(v))) {
    const kind = integer ? 'an integer' : 'a number'
    throw fail(RangeError, `option ${key}`, `must be ${kind} in [${min}, ${max}], got ${v}`)
  }
  return v
}

// A timeout in ms: a positive number, or null / Infinity for "no limit" (passed on as -1).
function timeoutOption(init, key) {
  const v = init[key]
  if (v === undefined) return undefined
  if (v === null || v === Infinity) return -1
  return number(init, key, { min: 1, max: 2 ** 31 })
}

function stringOption(init, key) {
  const v = init[key]
  if (v === undefined) return undefined
  if (typeof v !== 'string') throw fail(TypeError, `option ${key}`, 'must be a string')
  return v
}

// Extensions take real booleans: `'false'` (truthy) must not turn a setting on.
function boolOption(init, key) {
  const v = init[key]
  if (v === undefined) return undefined
  if (typeof v !== 'boolean') throw fail(TypeError, `option ${key}`, `must be true or false, got ${typeof v}`)
  return v
}

// A file path: a string or a file: URL.
function pathOption(init, key) {
  const v = init[key]
  if (v === undefined) return undefined
  if (v instanceof URL) {
    if (v.protocol !== 'file:') throw fail(TypeError, `option ${key}`, `must be a path or a file: URL, got ${v.href}`)
    return require('node:url').fileURLToPath(v)
  }
  if (typeof v !== 'string' || v === '') throw fail(TypeError, `option ${key}`, 'must be a file path (a string or a file: URL)')
  return v
}

function headerPairs(headers) {
  if (headers === undefined || headers === null) return undefined
  if (typeof headers !== 'object') {
    throw fail(TypeError, 'option headers', 'must be an object, a Headers, a Map or [name, value] pairs')
  }
  const pairs = []
  const iterable = typeof headers[Symbol.iterator] === 'function'
  for (const entry of iterable ? headers : Object.entries(headers)) {
    if (!Array.isArray(entry) || entry.length !== 2) {
      throw fail(TypeError, 'option headers', 'entries must be [name, value] pairs')
    }
    const [name, value] = entry
    if (Array.isArray(value)) {
      for (const v of value) pairs.push([String(name), String(v)])
    } else {
      pairs.push([String(name), String(value)])
    }
  }
  return pairs
}

function bodyOption(body) {
  if (body === undefined || body === null) return undefined
  if (typeof body === 'string') return Buffer.from(body, 'utf8')
  if (Buffer.isBuffer(body)) return body
  if (ArrayBuffer.isView(body)) return Buffer.from(body.buffer, body.byteOffset, body.byteLength)
  if (body instanceof ArrayBuffer) return Buffer.from(body)
  throw fail(TypeError, 'option body', 'must be a string, a Buffer, a TypedArray or an ArrayBuffer')
}

function transportOption(init) {
  const v = init.transport
  if (v === undefined) return undefined
  if (v !== 'default' && v !== 'lean') {
    throw fail(TypeError, 'option transport', `must be "default" (HTTP/1.1 and HTTP/2) or "lean" (HTTP/1.1), got ${describe(v)}`)
  }
  return v
}

// null or Infinity: no limit (the default).
function maxReconnectsOption(init) {
  const v = init.maxReconnects
  if (v === null || v === Infinity) return undefined
  return number(init, 'maxReconnects', { min: 0, integer: true, max: 2 ** 32 - 1 })
}

// A string, or null for no User-Agent at all.
function userAgentOption(init) {
  const v = init.userAgent
  if (v === undefined || v === null) return v
  if (typeof v !== 'string') throw fail(TypeError, 'option userAgent', 'must be a string, or null to send none')
  if (!/^[\t\x20-\x7e]*$/.test(v)) {
    throw fail(TypeError, 'option userAgent', 'must be printable ASCII (no control characters, no non-ASCII)')
  }
  return v
}

function signalOption(init) {
  const v = init.signal
  if (v === undefined || v === null) return undefined
  if (!(v instanceof AbortSignal)) throw fail(TypeError, 'option signal', 'must be an AbortSignal')
  return v
}

function describe(v) {
  return typeof v === 'string' ? JSON.stringify(v) : typeof v
}

// Every option, as the constructor reads it; `signal` is kept by the class, not passed on.
const OPTION_NAMES = [
  'withCredentials',
  'headers',
  'method',
  'body',
  'lastEventId',
  'retry',
  'maxRetry',
  'backoff',
  'connectTimeout',
  'readTimeout',
  'responseTimeout',
  'maxEventSize',
  'maxRedirects',
  'allowHttpsDowngrade',
  'proxy',
  'caCerts',
  'acceptInvalidCerts',
  'transport',
  'http2PriorKnowledge',
  'clientCert',
  'clientKey',
  'reconnect',
  'maxReconnects',
  'retryInitial',
  'userAgent',
  'maxErrorBody',
  'signal',
]
const OPTIONS = new Set(OPTION_NAMES)

// Options of other EventSource packages (and other spellings), with what to use here instead.
const ALTERNATIVES = {
  __proto__: null,
  fetch:
    'this EventSource makes its own requests, so it takes no fetch function: pass request headers ' +
    "(such as Authorization) with `headers: { Authorization: 'Bearer ...' }`, and `method`/`body` " +
    'for POST-style streams',
  https: 'use `caCerts`, `clientCert`/`clientKey` or `acceptInvalidCerts`',
  agent: 'use `proxy`, `caCerts` or `clientCert`/`clientKey`',
  dispatcher: 'use `proxy`, `caCerts` or `clientCert`/`clientKey`',
  rejectUnauthorized: 'use `acceptInvalidCerts: true` (for testing only)',
  ca: 'use `caCerts` (the path of a PEM file)',
  cert: 'use `clientCert` (the path of a PEM file)',
  key: 'use `clientKey` (the path of a PEM file)',
  timeout: 'use `connectTimeout` or `readTimeout` (ms)',
  heartbeatTimeout: 'use `readTimeout` (ms)',
  initialRetry: 'use `retry` (ms)',
  reconnectInterval: 'use `retry` (ms)',
  maxRetries: 'use `maxReconnects`',
  credentials: 'use `withCredentials: true`',
  redirect: 'use `maxRedirects` (0: follow none)',
  initialLastEventId: 'use `lastEventId`',
  onMessage: 'set `onmessage` on the EventSource, or use addEventListener',
  onOpen: 'set `onopen` on the EventSource, or use addEventListener',
  onError: 'set `onerror` on the EventSource, or use addEventListener',
}

// Same letters, other case or separators: `with_credentials`, `lastEventID`...
const NORMALIZED = new Map(OPTION_NAMES.map((k) => [k.toLowerCase(), k]))

function checkKeys(init) {
  for (const key of Object.keys(init)) {
    if (OPTIONS.has(key) || init[key] === undefined) continue
    let hint = ALTERNATIVES[key]
    if (hint === undefined) {
      const near = NORMALIZED.get(key.toLowerCase().replace(/[-_]/g, ''))
      hint = near ? `did you mean \`${near}\`?` : `the options are ${OPTION_NAMES.join(', ')}`
    }
    throw fail(TypeError, `unknown option \`${key}\`:`, hint)
  }
}

function nativeOptions(init) {
  if (init === undefined || init === null) return {}
  if (typeof init !== 'object' && typeof init !== 'function') {
    throw fail(TypeError, 'the second argument', 'must be an object (EventSourceInit)')
  }
  checkKeys(init)
  const method = stringOption(init, 'method')
  if (method !== undefined && method === '') throw fail(TypeError, 'option method', 'must not be empty')
  const clientCert = pathOption(init, 'clientCert')
  const clientKey = pathOption(init, 'clientKey')
  if (clientKey !== undefined && clientCert === undefined) {
    throw fail(TypeError, 'option clientKey', 'needs clientCert (the certificate of that key)')
  }
  const userAgent = userAgentOption(init)
  return {
    withCredentials: Boolean(init.withCredentials),
    headers: headerPairs(init.headers),
    method,
    body: bodyOption(init.body),
    lastEventId: stringOption(init, 'lastEventId'),
    retry: number(init, 'retry', { min: 0, max: 86_400_000 }),
    maxRetry: number(init, 'maxRetry', { min: 0, max: 86_400_000 }),
    backoff: number(init, 'backoff', { min: 1, max: 1e6 }),
    connectTimeout: timeoutOption(init, 'connectTimeout'),
    readTimeout: timeoutOption(init, 'readTimeout'),
    responseTimeout: timeoutOption(init, 'responseTimeout'),
    maxEventSize: number(init, 'maxEventSize', { min: 1, integer: true, max: 2 ** 40 }),
    maxRedirects: number(init, 'maxRedirects', { min: 0, integer: true, max: 2 ** 31 }),
    allowHttpsDowngrade: boolOption(init, 'allowHttpsDowngrade'),
    proxy: stringOption(init, 'proxy'),
    caCerts: pathOption(init, 'caCerts'),
    acceptInvalidCerts: boolOption(init, 'acceptInvalidCerts'),
    transport: transportOption(init),
    http2PriorKnowledge: boolOption(init, 'http2PriorKnowledge'),
    clientCert,
    clientKey,
    reconnect: boolOption(init, 'reconnect'),
    maxReconnects: maxReconnectsOption(init),
    retryInitial: boolOption(init, 'retryInitial'),
    userAgent: userAgent ?? undefined,
    noUserAgent: userAgent === null ? true : undefined,
    maxErrorBody: number(init, 'maxErrorBody', { min: 0, integer: true, max: 2 ** 40 }),
  }
}

// The core names options in snake_case; its messages are shown with this package's names.
const SNAKE_NAMES = new Map(OPTION_NAMES.map((k) => [k.replace(/[A-Z]/g, (m) => `_${m.toLowerCase()}`), k]))
function camelNames(msg) {
  return msg.replace(/(?<![\w/.\\-])[a-z0-9]+(?:_[a-z0-9]+)+(?![\w/.\\-])/g, (w) => SNAKE_NAMES.get(w) ?? w)
}

// The same for the messages of error events, but only where the core names an option (they
// may quote a URL or a server's words, which stay as they are): "(max_reconnects)",
// "retry_initial is off", "(max_event_size); raise max_event_size".
const EVENT_OPTION_NAMES =
  /\((max_reconnects|max_event_size|response_timeout|read_timeout)\)|\b(retry_initial)(?= is off)|(?<=raise |set )(max_event_size|allow_https_downgrade)\b/g
function eventMessage(msg) {
  if (!msg.includes('_')) return msg
  return msg.replace(EVENT_OPTION_NAMES, (m, a, b, c) =>
    a !== undefined ? `(${SNAKE_NAMES.get(a)})` : SNAKE_NAMES.get(b ?? c),
  )
}

// The headers of a response, as the native side sends them (`name:value\n` lines, lowercase
// names, values decoded as UTF-8), in a fetch `Headers`. Headers holds byte strings, as
// fetch() gives them: a value with non-ASCII text is turned back into its UTF-8 bytes, one
// character each (decode with `Buffer.from(v, 'latin1').toString()`).
function toHeaders(lines) {
  const headers = new Headers()
  let start = 0
  while (start < lines.length) {
    const end = lines.indexOf('\n', start)
    const colon = lines.indexOf(':', start)
    const name = lines.slice(start, colon)
    let value = lines.slice(colon + 1, end)
    start = end + 1
    if (/[^\x00-\x7f]/.test(value)) value = Buffer.from(value, 'utf8').toString('latin1')
    try {
      headers.append(name, value)
    } catch {
      // Unreachable: both transports refuse a response whose header names are not tokens or
      // whose values hold NUL, CR or LF (the only ones Headers refuses). A guard, so that a
      // header can never throw out of the dispatch loop.
    }
  }
  return headers
}

// ---------------------------------------------------------------------------------------------
// Error values

/**
 * The class of `error` events: an `Event` with what went wrong. `code` and `status` are the
 * HTTP status when the error has one (`code`, as in the `eventsource` package), `kind` a
 * stable name of the cause. An error about a response (`http_status`, `content_type`) also
 * has that response's `headers` and the start of its `body`; other errors have null there.
 */
class ErrorEvent extends Event {
  #message
  #kind
  #status
  #headers
  #body

  constructor(type, init = undefined) {
    super(type, init)
    const status = init?.status ?? init?.code
    this.#message = init?.message === undefined ? '' : String(init.message)
    this.#kind = init?.kind === undefined ? undefined : String(init.kind)
    this.#status = status === undefined || status === null ? undefined : Number(status)
    const headers = init?.headers
    this.#headers = headers === undefined || headers === null ? null : headers instanceof Headers ? headers : new Headers(headers)
    this.#body = init?.body === undefined || init.body === null ? null : String(init.body)
  }

  /** What went wrong, for people. */
  get message() {
    return this.#message
  }
  /** The HTTP status, if the error has one (as `status`). */
  get code() {
    return this.#status
  }
  get status() {
    return this.#status
  }
  /** A stable name: `connect`, `http_status`, ... */
  get kind() {
    return this.#kind
  }
  /** The headers of the response the error is about (a fetch `Headers`), or null. */
  get headers() {
    return this.#headers
  }
  /**
   * The start of that response's body (at most `maxErrorBody` bytes, decoded as UTF-8 with
   * replacement), or null; `''` for an empty body.
   */
  get body() {
    return this.#body
  }
}

/**
 * What `for await` throws when the source fails: the error event's message, kind, status, and
 * for an error about a response its headers and body start (else null).
 */
class EventSourceError extends Error {
  constructor(message, { kind, status, headers = null, body = null, cause } = {}) {
    super(message, cause === undefined ? undefined : { cause })
    this.kind = kind
    this.status = status
    this.headers = headers
    this.body = body
  }
}
Object.defineProperty(EventSourceError.prototype, 'name', {
  value: 'EventSourceError',
  writable: true,
  configurable: true,
})

for (const C of [ErrorEvent]) {
  for (const name of ['message', 'code', 'status', 'kind', 'headers', 'body']) {
    const d = Object.getOwnPropertyDescriptor(C.prototype, name)
    d.enumerable = true
    Object.defineProperty(C.prototype, name, d)
  }
}

// ---------------------------------------------------------------------------------------------
// Microtask checkpoints between events
//
// The spec queues a task per event, so the promise reactions a listener starts have all run
// before the next event is dispatched (an `open` listener's continuation sees OPEN, not the
// CONNECTING of an `error` that came in the same read). Events come here in batches, one
// native wake-up each, so between two events of a batch this runs what Node runs between two
// tasks: the nextTick queue and the microtask queue, until both are empty. That is the function
// Node itself calls between two setImmediate callbacks and between two timers; it costs about
// 20 ns of CPU per event, a quarter of an `await`. Where it is missing (another runtime) or is
// wrapped in a deprecation warning (--pending-deprecation), the dispatch loop awaits instead:
// that runs the reactions queued so far, which covers a listener's own promises.
const tick = process._tickCallback
const runTicks = typeof tick === 'function' && tick.name !== 'deprecated' ? tick : undefined

function checkpoint() {
  for (;;) {
    try {
      runTicks()
      return
    } catch (err) {
      // A throwing nextTick callback (EventTarget reports a throwing listener that way):
      // report it as Node would, without unwinding the dispatch loop, and go on.
      queueMicrotask(() => {
        throw err
      })
    }
  }
}

// ---------------------------------------------------------------------------------------------

const HANDLER_TYPES = ['open', 'message', 'error']

// Async iteration: a consumer that falls this far behind stops the source from taking more
// events (the native queue, then TCP, hold the rest) until it is back under half of it.
const ITER_HIGH_EVENTS = 4096
const ITER_HIGH_CHARS = 4 << 20

// Lifetime. The HTML spec keeps an EventSource from garbage collection while it is open or
// connecting and has listeners, and aborts the connection of one that is collected. Here: a
// source that is not closed and has a listener (of any type) or a `for await` waiting on it is
// held in HELD, and its native wake-up keeps the event loop alive. Otherwise only the program's
// own references hold it, the loop does not wait for it, and once it is collected its native
// half closes (Drop in node/src/lib.rs): the connection ends. The wake-up reaches the source
// through a WeakRef, so it never holds it.
const HELD = new Set()

// How an iterator's stream of messages ends.
const LIVE = 0
const ENDED = 1
const FAILED = 2

class EventSource extends EventTarget {
  #native
  #url
  #withCredentials
  #readyState = CONNECTING
  // What the last events said (the native side sends these only when they change).
  #type = 'message'
  #lastEventId = ''
  #origin = ''
  // Event handler attributes: type -> { fn, listener }.
  #handlers = { __proto__: null }
  #continue = () => this.#drain()
  // Where the next field or data starts in the text of the segment being dispatched.
  #pos = 0
  // A drain is running (it awaits between events where runTicks is missing).
  #draining = false
  #rewake = false
  #signal
  #onAbort
  // Async iterators' queues (null: none).
  #taps = null
  // Taking is paused because an iterator fell behind.
  #blocked = false
  // The EventSourceError of a fatal failure, for iterators made after it.
  #failure
  // The headers of the response that opened the connection: as sent (null before the first
  // open), and as a Headers once asked for.
  #openHeaders = null
  #responseHeaders = null
  // Lifetime (see HELD): held, and the wake-up ref'd (it is created ref'd).
  #held = true
  // Types that were given a listener; iterators waiting in next(); a `once` listener was added
  // (it goes away without removeEventListener); a waiting iterator was served.
  #types = new Set()
  #waiting = 0
  #volatile = false
  #recheck = false

  /**
   * @param {string | URL} url
   * @param {object} [init] `withCredentials` plus the extensions listed in index.d.ts
   */
  constructor(url, init = undefined) {
    super()
    if (arguments.length < 1) {
      throw new TypeError("Failed to construct 'EventSource': 1 argument required, but only 0 present.")
    }
    const href = String(url)
    const options = nativeOptions(init)
    const signal = init == null ? undefined : signalOption(init)
    try {
      this.#native = new NativeSource(href, options, EventSource.#weakly(this, EventSource.#DRAIN))
    } catch (err) {
      const msg = String(err && err.message)
      if (msg.startsWith('InvalidUrl: ')) {
        throw new DOMException(`Failed to construct 'EventSource': ${msg.slice(12)}`, 'SyntaxError')
      }
      if (msg.startsWith('InvalidOption: ')) {
        throw new TypeError(`Failed to construct 'EventSource': ${camelNames(msg.slice(15))}`)
      }
      throw err
    }
    this.#url = this.#native.url
    this.#withCredentials = this.#native.withCredentials
    if (signal !== undefined) {
      if (signal.aborted) {
        this.close()
      } else {
        this.#signal = signal
        this.#onAbort = () => this.close()
        signal.addEventListener('abort', this.#onAbort, { once: true })
      }
    }
    // No listener yet: the loop does not wait for it (unless one is added in this task).
    this.#updateHold()
  }

  addEventListener(type, listener, options = undefined) {
    super.addEventListener.apply(this, arguments)
    if (listener == null || this.#readyState === CLOSED) return
    this.#types.add(String(type))
    if (typeof options === 'object' && options !== null) {
      if (options.once) this.#volatile = true
      const signal = options.signal
      if (signal instanceof AbortSignal && !signal.aborted) {
        // The signal removes the listener without removeEventListener (after its own abort
        // listeners: hence the microtask).
        const update = EventSource.#weakly(this, EventSource.#UPDATE_HOLD)
        signal.addEventListener('abort', () => queueMicrotask(update), { once: true })
      }
    }
    if (!this.#held) this.#updateHold()
  }

  removeEventListener(type, listener, options = undefined) {
    super.removeEventListener.apply(this, arguments)
    if (this.#held) this.#updateHold()
  }

  /** The serialized URL. */
  get url() {
    return this.#url
  }

  get withCredentials() {
    return this.#withCredentials
  }

  /** The readyState of the last delivered event (CLOSED at once after close()). */
  get readyState() {
    return this.#readyState
  }

  /**
   * The headers of the response that opened the connection of the last delivered `open` (a
   * fetch `Headers`, the same object until the next `open`); null before the first one.
   */
  get responseHeaders() {
    if (this.#responseHeaders === null && this.#openHeaders !== null) {
      this.#responseHeaders = toHeaders(this.#openHeaders)
    }
    return this.#responseHeaders
  }

  get onopen() {
    return this.#getHandler('open')
  }
  set onopen(fn) {
    this.#setHandler('open', fn)
  }
  get onmessage() {
    return this.#getHandler('message')
  }
  set onmessage(fn) {
    this.#setHandler('message', fn)
  }
  get onerror() {
    return this.#getHandler('error')
  }
  set onerror(fn) {
    this.#setHandler('error', fn)
  }

  /** Closes the source: no event is dispatched afterwards, even from the batch being dispatched. */
  close() {
    this.#readyState = CLOSED
    this.#native.close()
    this.#detach()
    this.#endTaps(undefined)
    this.#updateHold()
  }

  /**
   * Yields every MessageEvent (the `message` type and named types alike) until the source is
   * closed; throws an EventSourceError if it fails. `break` (or return()) closes the source.
   */
  [Symbol.asyncIterator]() {
    const tap = { queue: [], head: 0, chars: 0, resolve: null, reject: null, end: LIVE, error: undefined }
    if (this.#readyState === CLOSED) {
      tap.end = this.#failure === undefined ? ENDED : FAILED
      tap.error = this.#failure
    } else {
      ;(this.#taps ??= []).push(tap)
    }
    const es = this
    return {
      next: () => es.#next(tap),
      return: () => {
        es.close()
        return Promise.resolve({ value: undefined, done: true })
      },
      [Symbol.asyncIterator]() {
        return this
      },
    }
  }

  // A function that calls `fn(es)` while `es` is alive, without holding it. Made here and with
  // these static `fn`s, not with arrows in the caller: a closure keeps its whole scope, and the
  // constructor's holds `this`.
  static #DRAIN = (es) => es.#drain()
  static #UPDATE_HOLD = (es) => es.#updateHold()
  static #weakly(es, fn) {
    const ref = new WeakRef(es)
    return () => {
      const target = ref.deref()
      if (target !== undefined) fn(target)
    }
  }

  // Holds the source (and refs its wake-up) while it is not closed and something listens or
  // waits; lets go otherwise. Cheap when nothing changed.
  #updateHold() {
    const hold = this.#readyState !== CLOSED && (this.#waiting > 0 || this.#listening())
    if (hold === this.#held) return
    this.#held = hold
    if (hold) HELD.add(this)
    else HELD.delete(this)
    this.#native.setRef(hold)
  }

  #listening() {
    for (const type of this.#types) {
      if (getEventListeners(this, type).length > 0) return true
    }
    return false
  }

  #getHandler(type) {
    const h = this.#handlers[type]
    return h ? h.fn : null
  }

  // HTML "event handler" semantics: the first non-null value adds a listener at the end of the
  // list, later values replace the callback in place, null removes the listener.
  #setHandler(type, fn) {
    if (typeof fn !== 'function' && (typeof fn !== 'object' || fn === null)) fn = null
    const h = this.#handlers[type]
    if (fn === null) {
      if (h) {
        this.removeEventListener(type, h.listener)
        this.#handlers[type] = undefined
      }
      return
    }
    if (h) {
      h.fn = fn
      return
    }
    const rec = { fn, listener: null }
    const target = this
    rec.listener = function (event) {
      return rec.fn.call(target, event)
    }
    this.#handlers[type] = rec
    this.addEventListener(type, rec.listener)
  }

  #detach() {
    if (this.#signal !== undefined) {
      this.#signal.removeEventListener('abort', this.#onAbort)
      this.#signal = undefined
      this.#onAbort = undefined
    }
  }

  // --- async iteration ---------------------------------------------------------------------

  #next(tap) {
    if (tap.head < tap.queue.length) {
      const event = tap.queue[tap.head]
      tap.queue[tap.head++] = undefined
      tap.chars -= event.data.length
      if (tap.head === tap.queue.length) {
        tap.queue.length = 0
        tap.head = 0
      } else if (tap.head >= 1024 && tap.head * 2 >= tap.queue.length) {
        tap.queue = tap.queue.slice(tap.head)
        tap.head = 0
      }
      if (this.#blocked && !this.#backlogged(2)) {
        // Caught up: take again, from a task of its own (take() never runs inside a listener).
        this.#blocked = false
        setImmediate(this.#continue)
      }
      return Promise.resolve({ value: event, done: false })
    }
    if (tap.end === FAILED) {
      tap.end = ENDED
      return Promise.reject(tap.error)
    }
    if (tap.end === ENDED) return Promise.resolve({ value: undefined, done: true })
    const p = new Promise((resolve, reject) => {
      tap.resolve = resolve
      tap.reject = reject
    })
    this.#waiting++
    if (!this.#held) this.#updateHold()
    return p
  }

  #feed(event) {
    for (const tap of this.#taps) {
      if (tap.resolve !== null) {
        const resolve = tap.resolve
        tap.resolve = tap.reject = null
        if (--this.#waiting === 0) this.#recheck = true
        resolve({ value: event, done: false })
      } else {
        tap.queue.push(event)
        tap.chars += event.data.length
      }
    }
  }

  // An iterator is this far behind (divisor 1: the pause mark; 2: the resume mark).
  #backlogged(divisor) {
    if (this.#taps === null) return false
    for (const tap of this.#taps) {
      if ((tap.queue.length - tap.head) * divisor >= ITER_HIGH_EVENTS || tap.chars * divisor >= ITER_HIGH_CHARS) {
        return true
      }
    }
    return false
  }

  // error undefined: closed (queued messages are dropped, as listeners get no more either);
  // an EventSourceError: failed (queued messages first, then the error); null: ended by the
  // server (queued messages, then done).
  #endTaps(error) {
    const taps = this.#taps
    if (taps === null) return
    this.#taps = null
    this.#blocked = false
    this.#waiting = 0
    for (const tap of taps) {
      if (error === undefined) {
        tap.queue = []
        tap.head = 0
        tap.chars = 0
      }
      tap.end = error ? FAILED : ENDED
      tap.error = error ?? undefined
      if (tap.resolve !== null) {
        const { resolve, reject } = tap
        tap.resolve = tap.reject = null
        if (error) {
          tap.end = ENDED
          reject(error)
        } else {
          resolve({ value: undefined, done: true })
        }
      }
    }
  }

  // --- delivery ----------------------------------------------------------------------------

  // Called on this thread by the native wake-up. Takes what is queued, a chunk at a time; after
  // DRAIN_CHUNKS chunks it yields to the event loop (setImmediate) so that timers and other I/O
  // still run during a flood. Synchronous where runTicks exists. Otherwise it awaits between
  // two events, and a wake-up that comes meanwhile is remembered (#rewake), not run alongside.
  async #drain() {
    if (this.#native === undefined) return // constructor failed
    if (this.#draining) {
      this.#rewake = true
      return
    }
    this.#draining = true
    // The first event of a task needs no checkpoint: the task boundary was one.
    let fresh = true
    let more = true
    try {
      do {
        this.#rewake = false
        more = true
        for (let chunk = 0; more && chunk < DRAIN_CHUNKS; chunk++) {
          if (this.#readyState === CLOSED) return
          if (this.#taps !== null && this.#backlogged(1)) {
            // An iterator is behind: its next() resumes taking.
            this.#blocked = true
            return
          }
          const text = this.#native.take(META)
          const words = META[0]
          more = META[1] === 1
          if (words === 0) continue
          const end = words + 2
          this.#pos = 0
          if (runTicks !== undefined) {
            this.#dispatch(text, META, 2, end, fresh)
            fresh = false
            continue
          }
          // One event per call, an await between two. Other sources may take() meanwhile:
          // keep a copy of the words.
          const meta = META.slice(0, end)
          for (let i = 2; ; fresh = true) {
            i = this.#dispatch(text, meta, i, end, fresh)
            fresh = false
            if (i >= end || this.#readyState === CLOSED) break
            await null
            if (this.#readyState === CLOSED) return
          }
        }
        // (With more queued, the setImmediate below takes it; #rewake only matters without.)
      } while (this.#rewake && !more && this.#readyState !== CLOSED)
    } finally {
      this.#draining = false
      if (more && this.#readyState !== CLOSED && !this.#blocked) setImmediate(this.#continue)
      // A `once` listener may be gone, or an iterator no longer waits.
      if (this.#volatile || this.#recheck) {
        this.#recheck = false
        this.#updateHold()
      }
    }
  }

  // Dispatches the events of meta[i..end), the text from #pos on. `fresh`: no checkpoint before
  // the first event. Returns where it stopped: `end`, or (closed, or without runTicks) before
  // the next event.
  #dispatch(text, meta, i, end, fresh) {
    let pos = this.#pos
    for (; i < end; i++) {
      // close() in a listener stops the rest of the batch at once.
      if (this.#readyState === CLOSED) break
      const w = meta[i]
      if (w < MSG_LIMIT || w >= OP_OPEN) {
        // An event (the other words are field changes).
        if (fresh) {
          fresh = false
        } else if (runTicks === undefined) {
          break // the caller awaits, then goes on
        } else {
          checkpoint()
          if (this.#readyState === CLOSED) break
        }
      }
      if (w < MSG_LIMIT) {
        const data = text.slice(pos, w)
        pos = w
        this.#readyState = OPEN
        const event = new MessageEvent(this.#type, { data, origin: this.#origin, lastEventId: this.#lastEventId })
        this.dispatchEvent(event)
        if (this.#taps !== null) this.#feed(event)
        continue
      }
      switch (w) {
        case OP_TYPE: {
          const e = meta[++i]
          this.#type = text.slice(pos, e)
          pos = e
          break
        }
        case OP_ID: {
          const e = meta[++i]
          this.#lastEventId = text.slice(pos, e)
          pos = e
          break
        }
        case OP_ORIGIN: {
          const e = meta[++i]
          this.#origin = text.slice(pos, e)
          pos = e
          break
        }
        case OP_OPEN: {
          // The headers arrive in a string of their own (the native side seals the segment),
          // so keeping them keeps nothing else alive. Made into a Headers only when asked for.
          const e = meta[++i]
          this.#openHeaders = text.slice(pos, e)
          this.#responseHeaders = null
          pos = e
          this.#readyState = OPEN
          this.dispatchEvent(new Event('open'))
          break
        }
        case OP_ERROR:
        case OP_ERROR_ANSWER: {
          const state = meta[i + 1]
          const status = meta[i + 2] === 0 ? undefined : meta[i + 2]
          const kindEnd = meta[i + 3]
          const e = meta[i + 4]
          i += 4
          const kind = text.slice(pos, kindEnd)
          const message = eventMessage(text.slice(kindEnd, e))
          pos = e
          let headers = null
          let body = null
          if (w === OP_ERROR_ANSWER) {
            const headersEnd = meta[i + 1]
            const bodyEnd = meta[i + 2]
            i += 2
            headers = toHeaders(text.slice(pos, headersEnd))
            body = text.slice(headersEnd, bodyEnd)
            pos = bodyEnd
          }
          this.#readyState = state
          const event = new ErrorEvent('error', { message, status, kind, headers, body })
          if (state === CLOSED) {
            // Failed for good: release the native side now (the process may exit).
            this.#native.close()
            this.#detach()
            this.#updateHold()
            // A 204 (the server's "stop") or the end of a stream that is not reconnected is
            // an end, not a failure.
            const ended = (kind === 'http_status' && status === 204) || kind === 'stream_ended'
            const failure = ended ? null : new EventSourceError(message, { kind, status, headers, body, cause: event })
            this.#failure = failure ?? undefined
            // Before the listeners: an `onerror` that calls close() must not turn the failure
            // into a quiet end for the loops.
            this.#endTaps(failure)
          }
          this.dispatchEvent(event)
          break
        }
        default:
          throw new Error(`eventsource-native: corrupt event stream word ${w} (a bug: please report)`)
      }
    }
    this.#pos = pos
    return i
  }

  get [Symbol.toStringTag]() {
    return 'EventSource'
  }
}

for (const [name, value] of [
  ['CONNECTING', CONNECTING],
  ['OPEN', OPEN],
  ['CLOSED', CLOSED],
]) {
  const desc = { value, writable: false, enumerable: true, configurable: false }
  Object.defineProperty(EventSource, name, desc)
  Object.defineProperty(EventSource.prototype, name, desc)
}
for (const name of ['url', 'withCredentials', 'readyState', 'responseHeaders', 'close', ...HANDLER_TYPES.map((t) => `on${t}`)]) {
  const d = Object.getOwnPropertyDescriptor(EventSource.prototype, name)
  d.enumerable = true
  Object.defineProperty(EventSource.prototype, name, d)
}

module.exports = { EventSource, ErrorEvent, EventSourceError, version: nativeVersion() }
module.exports.default = EventSource
