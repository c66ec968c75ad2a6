// The EventSource class against the real testserver: surface, events, reconnection, failures,
// close(), handler attributes, options. Numbers like (§11 7) refer to the assertions in
// the shared spec's checklist. Runs on the transport of ES_TEST_TRANSPORT (see helpers.mjs).
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { EventSource as PackageEventSource, ErrorEvent, EventSourceError } from '../index.mjs'
import * as esm from '../index.mjs'
import { EventSource, startServer, token, script, requestLog, record, sleep } from './helpers.mjs'

let server
let base
before(async () => {
  server = await startServer()
  base = server.base
})
after(() => server.stop())

const until = (pred) => (events) => pred(events, events[events.length - 1])
const lastIsClosedError = until((_, e) => e.type === 'error' && e.readyState === 2)

// ------------------------------------------------------------------------------------------
// Surface

test('surface: constants, url, withCredentials, readyState, EventTarget (§11 1, 2, 4, 5)', async () => {
  assert.deepEqual([EventSource.CONNECTING, EventSource.OPEN, EventSource.CLOSED], [0, 1, 2])
  const es = new EventSource(`${base}/a/../b?q`)
  try {
    assert.deepEqual([es.CONNECTING, es.OPEN, es.CLOSED], [0, 1, 2])
    assert.equal(es.readyState, 0)
    assert.equal(es.url, `${base}/b?q`)
    assert.equal(es.withCredentials, false)
    assert.ok(es instanceof EventTarget)
    assert.equal(Object.prototype.toString.call(es), '[object EventSource]')
    assert.equal(es.onopen, null)
    assert.equal(es.onmessage, null)
    assert.equal(es.onerror, null)
    assert.throws(() => {
      'use strict'
      EventSource.OPEN = 5
    }, TypeError)
  } finally {
    es.close()
  }
  const cred = new EventSource(new URL(`${base}/x`), { withCredentials: true })
  assert.equal(cred.withCredentials, true)
  assert.equal(cred.url, `${base}/x`)
  cred.close()
  assert.equal(cred.readyState, 2)
})

test('CommonJS and ESM entry points give the same classes', () => {
  const require = createRequire(import.meta.url)
  const cjs = require('../index.js')
  assert.equal(cjs.EventSource, PackageEventSource)
  assert.equal(cjs.default, PackageEventSource)
  assert.equal(esm.default, PackageEventSource)
  assert.equal(typeof cjs.ErrorEvent, 'function')
  assert.equal(cjs.ErrorEvent, ErrorEvent)
  assert.equal(cjs.EventSourceError, EventSourceError)
  assert.deepEqual(Object.keys(esm).sort(), ['ErrorEvent', 'EventSource', 'EventSourceError', 'default', 'version'])
  assert.match(cjs.version, /^\d+\.\d+\.\d+/)
})

test('ErrorEvent: an Event with message, code, status and kind; constructible', () => {
  const e = new ErrorEvent('error', { message: 'boom', status: 503, kind: 'http_status', cancelable: true })
  assert.ok(e instanceof Event)
  assert.deepEqual([e.type, e.message, e.code, e.status, e.kind, e.cancelable], ['error', 'boom', 503, 503, 'http_status', true])
  const bare = new ErrorEvent('error')
  assert.deepEqual([bare.message, bare.code, bare.status, bare.kind], ['', undefined, undefined, undefined])
  assert.equal(new ErrorEvent('error', { code: 404 }).status, 404)
  const err = new EventSourceError('failed', { kind: 'connect', cause: e })
  assert.ok(err instanceof Error)
  assert.deepEqual([err.name, err.message, err.kind, err.status, err.cause], ['EventSourceError', 'failed', 'connect', undefined, e])
})

test('a bad URL throws a SyntaxError DOMException (§11 3)', () => {
  for (const url of ['http://exa mple/', 'nope', '']) {
    assert.throws(
      () => new EventSource(url),
      (e) => e instanceof DOMException && e.name === 'SyntaxError' && /invalid URL/.test(e.message),
    )
  }
  assert.throws(() => new EventSource(), TypeError)
})

test('options are validated: TypeError and RangeError', () => {
  const u = `${base}/never`
  assert.throws(() => new EventSource(u, 5), TypeError)
  assert.throws(() => new EventSource(u, { retry: '1' }), TypeError)
  assert.throws(() => new EventSource(u, { retry: -1 }), RangeError)
  assert.throws(() => new EventSource(u, { retry: NaN }), TypeError)
  assert.throws(() => new EventSource(u, { backoff: 0.5 }), RangeError)
  assert.throws(() => new EventSource(u, { maxEventSize: 0 }), RangeError)
  assert.throws(() => new EventSource(u, { maxEventSize: 1.5 }), RangeError)
  assert.throws(() => new EventSource(u, { connectTimeout: 0 }), RangeError)
  assert.throws(() => new EventSource(u, { method: 3 }), TypeError)
  assert.throws(() => new EventSource(u, { method: 'BAD METHOD' }), TypeError)
  assert.throws(() => new EventSource(u, { headers: 'x' }), TypeError)
  assert.throws(() => new EventSource(u, { headers: [['a']] }), TypeError)
  assert.throws(() => new EventSource(u, { headers: { 'bad name': 'v' } }), TypeError)
  assert.throws(() => new EventSource(u, { headers: { 'Last-Event-ID': '1' } }), TypeError)
  assert.throws(() => new EventSource(u, { lastEventId: 'a\nb' }), TypeError)
  assert.throws(() => new EventSource(u, { body: 42 }), TypeError)
  // null/undefined init are fine; unknown keys are not (see options.test.mjs).
  new EventSource(u, null).close()
  new EventSource(u, { connectTimeout: null, readTimeout: Infinity }).close()
})

// ------------------------------------------------------------------------------------------
// Events

test('open then a MessageEvent with data, lastEventId and origin (§11 6, 7)', async () => {
  const t = token('basic')
  const es = new EventSource(script(base, t, { c1: 'data: hello\n\n', hold1: 1 }))
  let seenOpen
  es.addEventListener('open', (e) => {
    seenOpen = e
  })
  let seenMessage
  es.addEventListener('message', (e) => {
    seenMessage = e
  })
  const events = await record(es, { until: until((ev) => ev.length === 2) })
  assert.deepEqual(events, [
    { type: 'open', readyState: 1 },
    { type: 'message', readyState: 1, data: 'hello', lastEventId: '', origin: base },
  ])
  assert.ok(seenOpen instanceof Event)
  assert.ok(!(seenOpen instanceof MessageEvent))
  assert.ok(seenMessage instanceof MessageEvent)
  assert.equal(seenMessage.target, es)
  assert.equal(seenMessage.isTrusted, false) // Node's EventTarget cannot make trusted events
  const log = await requestLog(base, t)
  assert.equal(log.length, 1)
  assert.equal(log[0].method, 'GET')
  assert.equal(log[0].headers.accept, 'text/event-stream')
  assert.equal(log[0].headers['cache-control'], 'no-cache')
  assert.equal(log[0].headers['last-event-id'], undefined)
})

test('named events reach only their listeners; onmessage sees type message (§11 46, 50, 51)', async () => {
  const body = 'event: add\ndata: 1\n\nevent: remove\ndata: 2\n\ndata: 3\n\nevent: Add\ndata: 4\n\nevent: error\ndata: e\n\n'
  const es = new EventSource(script(base, token('named'), { c1: body, hold1: 1 }))
  const onmessage = []
  es.onmessage = (e) => onmessage.push(e.data)
  const errors = []
  es.addEventListener('error', (e) => errors.push([e instanceof MessageEvent, e.data, es.readyState]))
  const events = await record(es, {
    types: ['add', 'remove', 'Add', 'error'],
    until: until((ev) => ev.filter((e) => e.data !== undefined).length === 5),
  })
  assert.deepEqual(
    events.filter((e) => e.data !== undefined).map((e) => [e.type, e.data]),
    [
      ['add', '1'],
      ['remove', '2'],
      ['message', '3'],
      ['Add', '4'],
      ['error', 'e'],
    ],
  )
  assert.deepEqual(onmessage, ['3'])
  assert.deepEqual(errors, [[true, 'e', 1]])
})

test('non-ASCII, NUL, invalid UTF-8 and multi-line data cross intact (§11 42, 63, 64, 65)', async () => {
  const raw = Buffer.concat([
    Buffer.from('id: é😀\ndata: αβ…😀\ndata: second\n\n'),
    Buffer.from('data: a'),
    Buffer.from([0xff]),
    Buffer.from('b\n\ndata:\0\n\nevent: ünï\ndata: x\n\n'),
  ])
  const url = `${base}/script?t=${token('utf8')}&hold1=1&c1=${[...raw].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('')}`
  const es = new EventSource(url)
  const events = await record(es, { types: ['ünï'], until: until((ev) => ev.length === 5) })
  assert.deepEqual(
    events.slice(1).map((e) => [e.type, e.data, e.lastEventId]),
    [
      ['message', 'αβ…😀\nsecond', 'é😀'],
      ['message', 'a\uFFFDb', 'é😀'],
      ['message', '\0', 'é😀'],
      ['ünï', 'x', 'é😀'],
    ],
  )
})

test('the tricky stream, whole and dripped byte by byte (§11 68)', async () => {
  for (const drip of ['', '&drip=1']) {
    const es = new EventSource(`${base}/scenario/tricky?t=${token('tricky')}${drip}`)
    const events = await record(es, { types: ['x'], until: until((ev) => ev.length === 3) })
    assert.deepEqual(events.slice(1), [
      { type: 'message', readyState: 1, data: 'α…\n😀', lastEventId: '7', origin: base },
      { type: 'x', readyState: 1, data: '', lastEventId: '7', origin: base },
    ])
  }
})

test('500 events in one write arrive in order; 1 MiB data line intact (§11 66, 67)', async () => {
  const es = new EventSource(`${base}/scenario/many?count=500&t=${token('many')}`)
  const events = await record(es, { until: until((ev) => ev.length === 501) })
  const msgs = events.slice(1)
  assert.deepEqual(
    msgs.map((e) => [e.data, e.lastEventId]),
    Array.from({ length: 500 }, (_, i) => [String(i + 1), String(i + 1)]),
  )
  const big = new EventSource(`${base}/scenario/long-line?size=${3 << 20}&t=${token('long')}`)
  const ev = await record(big, { until: until((ev) => ev.length === 2) })
  assert.equal(ev[1].data.length, 3 << 20)
  assert.ok(/^x+$/.test(ev[1].data))
})

test('200,000 events of one stream: every one, in order (batches and continuations)', async () => {
  const N = 200_000
  const es = new EventSource(`${base}/stream?count=${N}&size=32&id=1`)
  let n = 0
  let ok = true
  await new Promise((resolve, reject) => {
    es.onmessage = (e) => {
      n++
      if (e.lastEventId !== String(n) || !e.data.startsWith(`{"seq":${n},`)) ok = false
      if (n === N) {
        es.close()
        resolve()
      }
    }
    es.onerror = (e) => {
      es.close()
      reject(new Error(`error after ${n}: ${e.message}`))
    }
  })
  assert.equal(n, N)
  assert.ok(ok, 'events out of order or corrupted')
})

test('an event is delivered at once, without waiting for more (§11 69)', async () => {
  const es = new EventSource(`${base}/scenario/pause-then-event?ms=3000&t=${token('live')}`)
  const t0 = performance.now()
  await record(es, { until: until((ev) => ev.length === 2) })
  assert.ok(performance.now() - t0 < 1500)
})

// ------------------------------------------------------------------------------------------
// Reconnection

test('reconnects after EOF with Last-Event-ID; retry: sets the delay (§11 16, 30, 32)', async () => {
  const t = token('reconnect')
  const es = new EventSource(
    script(base, t, { c1: 'retry: 200\nid: 42\ndata: one\n\n', c2: 'data: two\n\n', hold2: 1 }),
  )
  const t0 = performance.now()
  const events = await record(es, { until: until((ev) => ev.length === 5) })
  assert.deepEqual(
    events.map((e) => [e.type, e.readyState, e.data, e.lastEventId]),
    [
      ['open', 1, undefined, undefined],
      ['message', 1, 'one', '42'],
      ['error', 0, undefined, undefined],
      ['open', 1, undefined, undefined],
      ['message', 1, 'two', '42'],
    ],
  )
  assert.equal(events[2].kind, 'stream_ended')
  assert.equal(events[2].code, undefined)
  assert.match(events[2].message, /ended the stream/)
  assert.ok(performance.now() - t0 < 1200, 'retry: 200 should reconnect well under 3 s')
  const log = await requestLog(base, t)
  assert.equal(log.length, 2)
  assert.equal(log[1].headers['last-event-id'], '42')
  assert.ok(log[1].at_ms - log[0].done_ms >= 150)
})

test('the retry option sets the initial delay; lastEventId option sends the header', async () => {
  const t = token('retryopt')
  const es = new EventSource(script(base, t, { c1: 'data: one\n\n', c2: 'data: two\n\n', hold2: 1 }), {
    retry: 100,
    lastEventId: 'resume-é',
  })
  const events = await record(es, { until: until((ev) => ev.length === 5) })
  assert.deepEqual(events.map((e) => e.data).filter(Boolean), ['one', 'two'])
  assert.equal(events[1].lastEventId, 'resume-é')
  const log = await requestLog(base, t)
  assert.equal(log[0].headers['last-event-id'], 'resume-é')
})

test('a reconnection that gets 500 or 204 fails the source (§11 19, 20)', async () => {
  for (const [s2, code] of [
    [500, 500],
    [204, 204],
  ]) {
    const t = token('refail')
    const params = { c1: 'retry: 50\ndata: one\n\n' }
    if (s2 !== 204) Object.assign(params, { s2, c2: 'data: x\n\n' })
    const es = new EventSource(script(base, t, params))
    const events = await record(es, { until: lastIsClosedError })
    assert.deepEqual(
      events.map((e) => [e.type, e.readyState]),
      [
        ['open', 1],
        ['message', 1],
        ['error', 0],
        ['error', 2],
      ],
    )
    assert.equal(events[3].code, code)
    assert.equal(events[3].kind, 'http_status')
    assert.equal(es.readyState, 2)
  }
})

test('close() inside onerror while waiting to reconnect: no further request (§11 24)', async () => {
  const t = token('closeerr')
  const es = new EventSource(script(base, t, { c1: 'retry: 100\ndata: one\n\n', c2: 'data: two\n\n' }))
  es.onerror = () => es.close()
  await record(es, { until: until((_, e) => e.type === 'error') })
  await sleep(400)
  assert.equal((await requestLog(base, t)).length, 1)
})

// ------------------------------------------------------------------------------------------
// Failures

test('fatal statuses: error(2) with code, no open, no reconnect (§11 9, 10)', async () => {
  for (const s of [204, 201, 404, 500, 503]) {
    const t = token(`status${s}`)
    const es = new EventSource(script(base, t, { s1: s, c1: 'data: x\n\n' }))
    let seen
    es.onerror = (e) => (seen = e)
    const events = await record(es, { until: lastIsClosedError })
    assert.ok(seen instanceof ErrorEvent)
    assert.equal(seen.status, s)
    assert.equal(events.length, 1, `status ${s}: ${JSON.stringify(events)}`)
    assert.equal(events[0].code, s)
    assert.equal(events[0].kind, 'http_status')
    assert.ok(events[0].message.length > 0)
    await sleep(50)
    assert.equal((await requestLog(base, t)).length, 1)
  }
})

test('wrong or missing Content-Type fails the connection (§11 11)', async () => {
  for (const ct of ['text/x-bogus', 'text/html', 'none', 'text/event-streams']) {
    const t = token('ctype')
    const es = new EventSource(script(base, t, { ct1: ct, c1: 'data: x\n\n' }))
    const events = await record(es, { until: lastIsClosedError })
    assert.deepEqual(
      events.map((e) => [e.type, e.readyState, e.kind]),
      [['error', 2, 'content_type']],
    )
    assert.match(events[0].message, /Content-Type/)
  }
})

test('redirects: same-origin and cross-origin (origin changes, url does not) (§11 13, 14)', async () => {
  const t = token('redir')
  const target = script(base, t, { c1: 'data: moved\n\n', hold1: 1 })
  const url = `${base}/redirect?code=307&to=${encodeURIComponent(target)}`
  const es = new EventSource(url)
  const events = await record(es, { until: until((ev) => ev.length === 2) })
  assert.equal(events[1].data, 'moved')
  assert.equal(es.url, url)

  const t2 = token('xorigin')
  const xo = new EventSource(`${base}/scenario/cross-origin?t=${t2}&c1=${encodeURIComponent('data: far\n\n')}&hold1=1`)
  const ev2 = await record(xo, { until: until((ev) => ev.length === 2) })
  assert.equal(ev2[1].data, 'far')
  assert.equal(ev2[1].origin, `http://localhost:${server.port}`)
})

test('a non-http scheme is not a constructor error: error(2) later (§11 77)', async () => {
  const es = new EventSource('ftp://127.0.0.1/x')
  assert.equal(es.readyState, 0)
  const events = await record(es, { until: lastIsClosedError })
  assert.deepEqual(events.map((e) => [e.type, e.readyState, e.kind]), [['error', 2, 'unsupported_scheme']])
})

test('connection refused: error(0) and the source keeps trying (§11 21)', async () => {
  const es = new EventSource('http://127.0.0.1:9/', { retry: 50 })
  const seen = []
  es.addEventListener('error', (e) => seen.push(e))
  const events = await record(es, { until: until((ev) => ev.length === 2) })
  assert.ok(seen[0] instanceof ErrorEvent)
  assert.equal(seen[0].status, undefined)
  assert.match(seen[0].message, /127\.0\.0\.1:9|connect|refused/i)
  assert.deepEqual(
    events.map((e) => [e.type, e.readyState, e.kind]),
    [
      ['error', 0, 'connect'],
      ['error', 0, 'connect'],
    ],
  )
})

test('maxEventSize: an oversized event fails the source', async () => {
  const es = new EventSource(`${base}/scenario/long-line?size=5000&t=${token('max')}`, { maxEventSize: 1000 })
  const events = await record(es, { until: lastIsClosedError })
  assert.deepEqual(events.map((e) => [e.type, e.readyState]), [
    ['open', 1],
    ['error', 2],
  ])
  assert.equal(events[1].kind, 'event_too_large')
})

test('readTimeout: silence on an open stream reconnects', async () => {
  const t = token('silence')
  const es = new EventSource(`${base}/scenario/silence?ms=3000&t=${t}`, { readTimeout: 200, retry: 50 })
  const events = await record(es, { until: until((ev) => ev.length === 2) })
  assert.deepEqual(events.map((e) => [e.type, e.readyState, e.kind]), [
    ['open', 1, undefined],
    ['error', 0, 'timeout'],
  ])
})

// ------------------------------------------------------------------------------------------
// close()

test('close() inside the first onmessage of a batch: the rest is never delivered (§11 73)', async () => {
  const body = Array.from({ length: 1000 }, (_, i) => `data: ${i}\n\n`).join('')
  const es = new EventSource(script(base, token('closemsg'), { c1: body, hold1: 1 }))
  const seen = []
  await new Promise((resolve) => {
    es.onmessage = (e) => {
      seen.push(e.data)
      if (seen.length === 3) {
        es.close()
        assert.equal(es.readyState, 2)
        setTimeout(resolve, 300)
      }
    }
    // A second listener of the same event still runs (close() stops later events, not listeners).
    es.addEventListener('message', () => {})
  })
  assert.deepEqual(seen, ['0', '1', '2'])
})

test('close() inside onopen with the data in the same chunk: no message (§11 72)', async () => {
  const es = new EventSource(script(base, token('closeopen'), { c1: 'data: a\n\ndata: b\n\n', hold1: 1 }))
  const seen = []
  es.onopen = () => es.close()
  es.onmessage = (e) => seen.push(e.data)
  es.onerror = (e) => seen.push(`error ${e.message}`)
  await sleep(500)
  assert.deepEqual(seen, [])
  assert.equal(es.readyState, 2)
})

test('close() right after the constructor: no event at all; twice is harmless (§11 71, 74, 75)', async () => {
  const t = token('closenow')
  const es = new EventSource(script(base, t, { c1: 'data: a\n\n', hold1: 1 }))
  const seen = []
  for (const type of ['open', 'message', 'error']) es.addEventListener(type, (e) => seen.push(e.type))
  es.close()
  assert.equal(es.readyState, 2)
  es.close()
  await sleep(300)
  assert.deepEqual(seen, [])
  assert.equal(es.readyState, 2)
})

test('close() drops the connection: the server sees the socket close (§11 71)', async () => {
  const t = token('sockclose')
  const es = new EventSource(script(base, t, { c1: 'data: a\n\n', hold1: 1 }))
  await record(es, { until: until((ev) => ev.length === 2) })
  let log
  for (let i = 0; i < 50; i++) {
    log = await requestLog(base, t)
    if (log[0]?.done_ms != null) break
    await sleep(20)
  }
  assert.notEqual(log[0].done_ms, null)
})

// ------------------------------------------------------------------------------------------
// Event handler attributes

test('onopen/onmessage/onerror behave like listeners and keep their position (§11 76)', async () => {
  const es = new EventSource(script(base, token('attrs'), { c1: 'data: x\n\n', hold1: 1 }))
  const order = []
  es.addEventListener('message', () => order.push('first'))
  es.onmessage = function (e) {
    order.push(`handler1:${this === es}:${e.data}`)
  }
  es.addEventListener('message', () => order.push('third'))
  // Replacing a handler keeps its place; null then a new value moves it to the end.
  es.onmessage = (e) => order.push(`handler2:${e.data}`)
  assert.equal(typeof es.onmessage, 'function')
  es.onopen = () => order.push('open')
  es.onopen = null
  assert.equal(es.onopen, null)
  es.onopen = () => order.push('open2')
  es.onerror = 'not callable' // ignored → null
  assert.equal(es.onerror, null)
  await record(es, { until: until((ev) => ev.length === 2) })
  assert.deepEqual(order, ['open2', 'first', 'handler2:x', 'third'])

  const es2 = new EventSource(script(base, token('attrs2'), { c1: 'data: y\n\n', hold1: 1 }))
  const order2 = []
  es2.onmessage = () => order2.push('h')
  es2.addEventListener('message', () => order2.push('l'))
  es2.onmessage = null
  es2.onmessage = () => order2.push('h2')
  await record(es2, { until: until((ev) => ev.length === 2) })
  assert.deepEqual(order2, ['l', 'h2'])
})

// ------------------------------------------------------------------------------------------
// Options that reach the request

test('headers, method and body are sent on every (re)connection', async () => {
  const t = token('req')
  const es = new EventSource(script(base, t, { c1: 'retry: 50\ndata: one\n\n', c2: 'data: two\n\n', hold2: 1 }), {
    headers: { Authorization: 'Bearer t0ken', 'X-Multi': ['a', 'b'] },
    method: 'POST',
    body: '{"q":"é"}',
    reconnect: true, // a POST is not sent again otherwise
  })
  await record(es, { until: until((ev) => ev.filter((e) => e.data).length === 2) })
  const log = await requestLog(base, t)
  assert.equal(log.length, 2)
  for (const r of log) {
    assert.equal(r.method, 'POST')
    assert.equal(r.headers.authorization, 'Bearer t0ken')
    assert.equal(r.headers['x-multi'], 'a, b')
    assert.equal(r.body, '{"q":"é"}')
    assert.equal(r.headers.accept, 'text/event-stream')
  }
  const t2 = token('req2')
  const es2 = new EventSource(script(base, t2, { c1: 'data: x\n\n', hold1: 1 }), {
    headers: new Headers([['X-From-Headers', '1']]),
    body: new Uint8Array([104, 105]),
    method: 'PUT',
  })
  await record(es2, { until: until((ev) => ev.length === 2) })
  const [r] = await requestLog(base, t2)
  assert.equal(r.headers['x-from-headers'], '1')
  assert.equal(r.method, 'PUT')
  assert.equal(r.body, 'hi')
})

// ------------------------------------------------------------------------------------------
// Browser-style code

test('globalThis.EventSource = EventSource: browser code works unchanged', async () => {
  const saved = globalThis.EventSource
  globalThis.EventSource = EventSource
  try {
    // What a browser page would do, written against the global only.
    const browserCode = new Function(
      'url',
      `return new Promise((resolve) => {
        const source = new EventSource(url);
        const got = [];
        source.onopen = function () { got.push('open:' + (this.readyState === EventSource.OPEN)); };
        source.addEventListener('tick', function (e) { got.push('tick:' + e.data + ':' + e.lastEventId); });
        source.onmessage = (e) => {
          got.push('message:' + JSON.parse(e.data).n);
          if (got.length === 4) { source.close(); resolve([got, source.readyState === source.CLOSED]); }
        };
      });`,
    )
    const body = 'data: {"n":1}\n\nevent: tick\nid: 9\ndata: t\n\ndata: {"n":2}\n\n'
    const [got, closed] = await browserCode(script(base, token('browser'), { c1: body, hold1: 1 }))
    assert.deepEqual(got, ['open:true', 'message:1', 'tick:t:9', 'message:2'])
    assert.equal(closed, true)
  } finally {
    globalThis.EventSource = saved
  }
})
