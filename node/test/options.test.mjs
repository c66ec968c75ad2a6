// Options: every option of the core is accepted under its camelCase name and validated
// (TypeError for a wrong type, RangeError for a value out of range); keys that are not options
// are refused with the alternative named; `signal` closes the source.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { EventSource, startServer, token, script, requestLog, record, sleep } from './helpers.mjs'
import { version } from '../index.mjs'

let server
let base
before(async () => {
  server = await startServer()
  base = server.base
})
after(() => server.stop())

const NEVER = 'http://127.0.0.1:9/never'
const make = (init) => new EventSource(NEVER, init)
const accepts = (init) => make(init).close()
const until = (pred) => (events) => pred(events, events[events.length - 1])

test('every option is accepted with a valid value', () => {
  accepts({
    withCredentials: true,
    headers: { 'X-A': '1' },
    method: 'POST',
    body: 'x',
    lastEventId: '7',
    retry: 10,
    maxRetry: 100,
    backoff: 1.5,
    connectTimeout: 1000,
    readTimeout: null,
    maxEventSize: 1024,
    maxRedirects: 0,
    proxy: 'http://127.0.0.1:9',
    acceptInvalidCerts: false,
    transport: 'default',
    http2PriorKnowledge: true,
    reconnect: false,
    maxReconnects: 3,
    retryInitial: false,
    userAgent: 'probe/1.0',
    maxErrorBody: 0,
    signal: new AbortController().signal,
  })
  accepts({ transport: 'lean', reconnect: true, maxReconnects: 0, retryInitial: true, userAgent: null })
  accepts({ maxReconnects: null, signal: null, userAgent: '', maxErrorBody: 2 ** 20 })
  accepts({ maxReconnects: Infinity, reconnect: undefined, transport: undefined })
})

test('new options: bad values throw TypeError or RangeError', () => {
  const bad = [
    [{ transport: 'fast' }, TypeError, /transport must be "default" .* or "lean"/],
    [{ transport: 'LEAN' }, TypeError, /transport/],
    [{ transport: 1 }, TypeError, /transport/],
    [{ http2PriorKnowledge: 'true' }, TypeError, /http2PriorKnowledge must be true or false/],
    [{ acceptInvalidCerts: 'false' }, TypeError, /acceptInvalidCerts must be true or false/],
    [{ reconnect: 1 }, TypeError, /reconnect must be true or false/],
    [{ reconnect: null }, TypeError, /reconnect/],
    [{ retryInitial: 'no' }, TypeError, /retryInitial/],
    [{ maxReconnects: -1 }, RangeError, /maxReconnects/],
    [{ maxReconnects: 1.5 }, RangeError, /maxReconnects/],
    [{ maxReconnects: 2 ** 32 }, RangeError, /maxReconnects/],
    [{ maxReconnects: '3' }, TypeError, /maxReconnects must be a number/],
    [{ maxErrorBody: -1 }, RangeError, /maxErrorBody/],
    [{ maxErrorBody: 0.5 }, RangeError, /maxErrorBody/],
    [{ maxErrorBody: '1' }, TypeError, /maxErrorBody/],
    [{ userAgent: 5 }, TypeError, /userAgent must be a string, or null/],
    [{ userAgent: 'a\r\nX-Injected: 1' }, TypeError, /userAgent must be printable ASCII/],
    [{ userAgent: 'café' }, TypeError, /userAgent/],
    [{ clientCert: 5 }, TypeError, /clientCert must be a file path/],
    [{ clientCert: '' }, TypeError, /clientCert/],
    [{ clientKey: '/tmp/k.pem' }, TypeError, /clientKey needs clientCert/],
    [{ caCerts: new URL('http://x/ca.pem') }, TypeError, /caCerts must be a path or a file: URL/],
    [{ signal: {} }, TypeError, /signal must be an AbortSignal/],
    [{ signal: 'abort' }, TypeError, /signal/],
  ]
  for (const [init, Kind, re] of bad) {
    assert.throws(
      () => make(init),
      (e) => e instanceof Kind && re.test(e.message) && e.message.startsWith("Failed to construct 'EventSource': "),
      JSON.stringify(init),
    )
  }
})

test('options the core refuses: TypeError with camelCase names', () => {
  const refused = [
    // The lean transport speaks HTTP/1.1 only, and no SOCKS.
    [{ transport: 'lean', http2PriorKnowledge: true }, /http2PriorKnowledge needs the default transport/],
    [{ transport: 'lean', proxy: 'socks5://127.0.0.1:1' }, /socks/i],
    [{ caCerts: '/nonexistent/ca.pem' }, /\/nonexistent\/ca\.pem/],
    [{ clientCert: '/nonexistent/client.pem' }, /\/nonexistent\/client\.pem/],
    [{ proxy: 'not a url' }, /proxy/],
  ]
  for (const [init, re] of refused) {
    assert.throws(
      () => make(init),
      (e) => e instanceof TypeError && re.test(e.message) && !/http2_prior_knowledge/.test(e.message),
      JSON.stringify(init),
    )
  }
  // File paths pass through as they are (a snake_case directory name is not an option name).
  assert.throws(
    () => make({ caCerts: new URL('file:///nonexistent/ca_certs/root.pem') }),
    (e) => e instanceof TypeError && e.message.includes('/nonexistent/ca_certs/root.pem'),
  )
})

test('unknown keys are refused, naming the alternative', () => {
  const fetchLike = (input, init) => fetch(input, init)
  const cases = [
    // The `eventsource` package (v3+) adds Authorization through a fetch wrapper.
    [{ fetch: fetchLike }, /unknown option `fetch`: .*`headers/],
    [{ with_credentials: true }, /unknown option `with_credentials`: did you mean `withCredentials`\?/],
    [{ lastEventID: '1' }, /did you mean `lastEventId`\?/],
    [{ 'max-retry': 1 }, /did you mean `maxRetry`\?/],
    [{ https: { rejectUnauthorized: false } }, /`caCerts`.*`acceptInvalidCerts`/],
    [{ rejectUnauthorized: false }, /`acceptInvalidCerts: true`/],
    [{ timeout: 5 }, /`connectTimeout` or `readTimeout`/],
    [{ maxRetries: 5 }, /`maxReconnects`/],
    [{ credentials: 'include' }, /`withCredentials: true`/],
    [{ onMessage: () => {} }, /`onmessage`/],
    [{ nonsense: 1 }, /unknown option `nonsense`: the options are withCredentials, headers, .*signal/],
  ]
  for (const [init, re] of cases) {
    assert.throws(
      () => make(init),
      (e) => e instanceof TypeError && re.test(e.message),
      Object.keys(init)[0],
    )
  }
  // What the browser's EventSourceInit has is accepted; an unknown key left undefined (a
  // spread of optional settings) changes nothing and is let through.
  accepts({ withCredentials: false })
  accepts({ fetch: undefined })
  // Symbol keys and inherited keys are not options.
  accepts({ [Symbol('x')]: 1 })
  accepts(Object.create({ nonsense: 1 }))
})

test('userAgent: the default names the package, a string replaces it, null sends none', async () => {
  const cases = [
    [undefined, (ua) => assert.equal(ua, `eventsource-native/${version}`)],
    ['probe/2.0', (ua) => assert.equal(ua, 'probe/2.0')],
    [null, (ua) => assert.equal(ua, undefined)],
  ]
  for (const [userAgent, check] of cases) {
    const t = token('ua')
    const init = userAgent === undefined ? {} : { userAgent }
    const es = new EventSource(script(base, t, { c1: 'data: x\n\n', hold1: 1 }), init)
    await record(es, { until: until((ev) => ev.length === 2) })
    const [r] = await requestLog(base, t)
    check(r.headers['user-agent'])
  }
})

test('reconnect: false ends a GET source at the end of its stream; the default does so for POST', async () => {
  // Reconnecting: one, two, then a 204 on the third request.
  for (const [init, requests, why] of [
    [{ reconnect: false }, 1, /reconnect is off/],
    [{ method: 'POST', body: '{}' }, 1, /a POST stream is not sent again \(set reconnect to resend it\)/],
    [{ method: 'POST', body: '{}', reconnect: true }, 3, /204/],
    [{ method: 'PUT', body: '{}', reconnect: false }, 1, /reconnect is off/],
    [{}, 3, /204/],
  ]) {
    const t = token('reconnect')
    const es = new EventSource(script(base, t, { c1: 'retry: 20\ndata: one\n\n', c2: 'data: two\n\n' }), init)
    const events = await record(es, { until: until((_, e) => e.type === 'error' && e.readyState === 2) })
    const data = events.filter((e) => e.type === 'message').map((e) => e.data)
    assert.deepEqual(data, requests === 1 ? ['one'] : ['one', 'two'], JSON.stringify(init))
    const last = events.at(-1)
    assert.match(last.message, why, JSON.stringify(init))
    // The end of a stream that is not sent again is an end (kind stream_ended), not a failure.
    if (requests === 1) assert.equal(last.kind, 'stream_ended')
    // No error(CONNECTING) before the end: the source did not wait to reconnect.
    assert.equal(events.filter((e) => e.type === 'error').length, requests, JSON.stringify(events))
    // Give a wrong reconnection the time to happen before counting the requests.
    await sleep(100)
    assert.equal((await requestLog(base, t)).length, requests, JSON.stringify(init))
  }
})

test('maxReconnects gives up after that many failed attempts; retryInitial: false at once', async () => {
  // Refused at once: every attempt fails. 1 + 2 attempts, then the give-up.
  const es = new EventSource(NEVER, { retry: 10, backoff: 1, maxReconnects: 2 })
  const events = await record(es, { until: until((_, e) => e.readyState === 2), timeout: 5000 })
  assert.deepEqual(
    events.map((e) => [e.type, e.readyState, e.kind]),
    [
      ['error', 0, 'connect'],
      ['error', 0, 'connect'],
      ['error', 2, 'connect'],
    ],
  )
  // The core's option name is shown as this package spells it.
  assert.match(events.at(-1).message, /giving up after 2 reconnection attempts in a row \(maxReconnects\)/)

  // maxReconnects: 0: the first failure is the last.
  const zero = new EventSource(NEVER, { retry: 10, maxReconnects: 0 })
  const ev0 = await record(zero, { until: until((_, e) => e.readyState === 2), timeout: 5000 })
  assert.deepEqual(ev0.map((e) => [e.type, e.readyState]), [['error', 2]])
  assert.match(ev0[0].message, /\(maxReconnects\)/)

  // A server that answers and closes at once: its attempts count as failures too.
  const t = token('maxrec')
  const url = `${base}/scenario/instant-close?t=${t}&retry=10`
  const closing = new EventSource(url, { maxReconnects: 3 })
  const ev1 = await record(closing, { until: until((_, e) => e.type === 'error' && e.readyState === 2), timeout: 10_000 })
  assert.equal(ev1.filter((e) => e.type === 'open').length, 4, JSON.stringify(ev1))
  await sleep(100)
  assert.equal((await requestLog(base, t)).length, 4)

  const once = new EventSource(NEVER, { retry: 10, retryInitial: false })
  const ev2 = await record(once, { until: until((_, e) => e.readyState === 2), timeout: 5000 })
  assert.deepEqual(ev2.map((e) => [e.type, e.readyState, e.kind]), [['error', 2, 'connect']])
  assert.match(ev2[0].message, /the first connection failed and retryInitial is off/)

  // retryInitial: false concerns the first connection only: once open, the source reconnects.
  const t2 = token('retryinit')
  const later = new EventSource(script(base, t2, { c1: 'retry: 10\ndata: one\n\n', c2: 'data: two\n\n' }), {
    retryInitial: false,
  })
  const ev3 = await record(later, { until: until((_, e) => e.type === 'error' && e.readyState === 2) })
  assert.deepEqual(
    ev3.filter((e) => e.type === 'message').map((e) => e.data),
    ['one', 'two'],
  )
})

test('signal: aborting closes the source; an aborted signal closes it at once', async () => {
  const t = token('abort')
  const ac = new AbortController()
  const es = new EventSource(script(base, t, { c1: 'data: one\n\n', hold1: 1 }), { signal: ac.signal })
  const seen = []
  for (const type of ['open', 'message', 'error']) es.addEventListener(type, (e) => seen.push(e.type))
  await new Promise((resolve) => es.addEventListener('message', resolve))
  ac.abort()
  assert.equal(es.readyState, EventSource.CLOSED)
  // The connection is dropped: the server sees the client go away.
  let log
  for (let i = 0; i < 100; i++) {
    log = await requestLog(base, t)
    if (log[0]?.done_ms != null) break
    await sleep(20)
  }
  assert.notEqual(log[0].done_ms, null)
  assert.deepEqual(seen, ['open', 'message'])

  const aborted = AbortSignal.abort()
  const t2 = token('aborted')
  const es2 = new EventSource(script(base, t2, { c1: 'data: x\n\n', hold1: 1 }), { signal: aborted })
  assert.equal(es2.readyState, EventSource.CLOSED)
  const seen2 = []
  for (const type of ['open', 'message', 'error']) es2.addEventListener(type, (e) => seen2.push(e.type))
  await sleep(300)
  assert.deepEqual(seen2, [])
  // A bad URL still throws, aborted or not.
  assert.throws(() => new EventSource('nope', { signal: aborted }), (e) => e.name === 'SyntaxError')
})

test('signal: close() first, then abort: nothing happens; one signal for many sources', async () => {
  const ac = new AbortController()
  const sources = Array.from({ length: 3 }, () =>
    new EventSource(script(base, token('many'), { c1: 'data: x\n\n', hold1: 1 }), { signal: ac.signal }),
  )
  sources[0].close()
  await Promise.all(sources.slice(1).map((es) => new Promise((r) => es.addEventListener('message', r))))
  ac.abort()
  for (const es of sources) assert.equal(es.readyState, EventSource.CLOSED)
})
