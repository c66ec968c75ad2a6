'use strict'
// eventsource-native: a WHATWG EventSource for Node.js, backed by the Rust core.
//
// The class extends the real EventTarget and dispatches real MessageEvents and Events. The
// native half (NativeSource, private) runs the connection on the library's own threads and
// wakes this thread through a threadsafe function; each wake-up takes every queued event as
// one string plus a compact word stream (see node/src/lib.rs), and this file turns them into
// events, one dispatch at a time, checking before each that close() was not called.

const path = require('node:path')

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

const { NativeSource, nativeVersion } = loadNative()

const CONNECTING = 0
const OPEN = 1
const CLOSED = 2

// Word-stream opcodes, as in node/src/lib.rs.
const OP_TYPE = 0x80000001
const OP_ID = 0x80000002
const OP_ORIGIN = 0x80000003
const OP_OPEN = 0x80000004
const OP_ERROR = 0x80000005
const MSG_LIMIT = 0x80000000

// Error kinds by index, as KINDS in node/src/lib.rs.
const KINDS = [
  'invalid_url',
  'invalid_option',
  'unsupported_scheme',
  'connect',
  'timeout',
  'network',
  'stream_ended',
  'http_status',
  'content_type',
  'too_many_redirects',
  'event_too_large',
]

// One word buffer for every source: take() fills it and the dispatch loop reads it before the
// next take() can run (take() is only ever called from a fresh task, never from a listener).
const META = new Uint32Array(1 << 15)
// Chunks (one take() each, at most ~96 KiB of text or ~4,600 events) per task.
const DRAIN_CHUNKS = 16

// ---------------------------------------------------------------------------------------------
// Options: the WHATWG dictionary (withCredentials) plus this package's extensions.

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

function nativeOptions(init) {
  if (init === undefined || init === null) return {}
  if (typeof init !== 'object' && typeof init !== 'function') {
    throw fail(TypeError, 'the second argument', 'must be an object (EventSourceInit)')
  }
  const method = stringOption(init, 'method')
  if (method !== undefined && method === '') throw fail(TypeError, 'option method', 'must not be empty')
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
    maxEventSize: number(init, 'maxEventSize', { min: 1, integer: true, max: 2 ** 40 }),
    maxRedirects: number(init, 'maxRedirects', { min: 0, integer: true, max: 2 ** 31 }),
    proxy: stringOption(init, 'proxy'),
    caCerts: stringOption(init, 'caCerts'),
    acceptInvalidCerts: init.acceptInvalidCerts === undefined ? undefined : Boolean(init.acceptInvalidCerts),
  }
}

// ---------------------------------------------------------------------------------------------

const HANDLER_TYPES = ['open', 'message', 'error']

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
    try {
      this.#native = new NativeSource(href, options, this.#continue)
    } catch (err) {
      const msg = String(err && err.message)
      if (msg.startsWith('InvalidUrl: ')) {
        throw new DOMException(`Failed to construct 'EventSource': ${msg.slice(12)}`, 'SyntaxError')
      }
      if (msg.startsWith('InvalidOption: ')) {
        throw new TypeError(`Failed to construct 'EventSource': ${msg.slice(15)}`)
      }
      throw err
    }
    this.#url = this.#native.url
    this.#withCredentials = this.#native.withCredentials
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

  // Called on this thread by the native wake-up. Takes what is queued, a chunk at a time; after
  // DRAIN_CHUNKS chunks it yields to the event loop (setImmediate) so that timers and other I/O
  // still run during a flood.
  #drain() {
    if (this.#native === undefined) return // constructor failed
    let more = true
    for (let chunk = 0; more && chunk < DRAIN_CHUNKS; chunk++) {
      if (this.#readyState === CLOSED) return
      const text = this.#native.take(META)
      const words = META[0]
      more = META[1] === 1
      if (words === 0) continue
      try {
        this.#dispatchAll(text, words)
      } catch (err) {
        if (more) setImmediate(this.#continue)
        throw err
      }
    }
    if (more && this.#readyState !== CLOSED) setImmediate(this.#continue)
  }

  #dispatchAll(text, words) {
    const meta = META
    const end = words + 2
    let pos = 0
    for (let i = 2; i < end; i++) {
      // close() in a listener stops the rest of the batch at once.
      if (this.#readyState === CLOSED) return
      const w = meta[i]
      if (w < MSG_LIMIT) {
        const data = text.slice(pos, w)
        pos = w
        this.#readyState = OPEN
        this.dispatchEvent(
          new MessageEvent(this.#type, { data, origin: this.#origin, lastEventId: this.#lastEventId }),
        )
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
        case OP_OPEN:
          this.#readyState = OPEN
          this.dispatchEvent(new Event('open'))
          break
        case OP_ERROR: {
          const state = meta[i + 1]
          const status = meta[i + 2]
          const kind = KINDS[meta[i + 3]]
          const e = meta[i + 4]
          i += 4
          const message = text.slice(pos, e)
          pos = e
          this.#readyState = state
          // Failed for good: release the native side now (the process may exit).
          if (state === CLOSED) this.#native.close()
          const event = new Event('error')
          Object.defineProperties(event, {
            code: { value: status === 0 ? undefined : status, enumerable: true },
            message: { value: message, enumerable: true },
            kind: { value: kind, enumerable: true },
          })
          this.dispatchEvent(event)
          break
        }
        default:
          throw new Error(`eventsource-native: corrupt event stream word ${w} (a bug: please report)`)
      }
    }
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
for (const name of ['url', 'withCredentials', 'readyState', 'close', ...HANDLER_TYPES.map((t) => `on${t}`)]) {
  const d = Object.getOwnPropertyDescriptor(EventSource.prototype, name)
  d.enumerable = true
  Object.defineProperty(EventSource.prototype, name, d)
}

module.exports = { EventSource, version: nativeVersion() }
module.exports.default = EventSource
