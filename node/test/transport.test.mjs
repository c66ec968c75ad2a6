// Transports and the connection options, end to end against a testserver with every listener
// (--all): the default transport and the lean one both stream; h2c with http2PriorKnowledge;
// HTTPS with caCerts (HTTP/2 by ALPN on the default transport); mutual TLS with
// clientCert/clientKey; HTTP and SOCKS5 proxies (checked in the server's /proxy-log).
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { EventSource as PackageEventSource } from '../index.mjs'
import { EventSource, TRANSPORT, startServer, token, script, requestLog, record } from './helpers.mjs'

let server
let base
let lines
before(async () => {
  server = await startServer({ args: ['--all'] })
  base = server.base
  lines = server.lines
})
after(() => server.stop())

const TRANSPORTS = ['default', 'lean']
const until = (pred) => (events) => pred(events, events[events.length - 1])
const twoEvents = until((ev) => ev.length === 2)

/** Opens `url` with `init`, expects open + one message 'hi'; returns the request log entry. */
async function streamOnce(urlBase, t, init) {
  const es = new PackageEventSource(script(urlBase, t, { c1: 'data: hi\n\n', hold1: 1 }), init)
  const events = await record(es, { until: twoEvents })
  assert.deepEqual(
    events.map((e) => [e.type, e.data]),
    [
      ['open', undefined],
      ['message', 'hi'],
    ],
    JSON.stringify(init),
  )
  const log = await requestLog(base, t)
  assert.equal(log.length, 1)
  return log[0]
}

test('the testserver printed its listeners and files', () => {
  for (const name of ['tls', 'mtls', 'http-proxy', 'socks5-proxy', 'ca-cert', 'client-cert', 'client-key']) {
    assert.ok(lines[name], `${name} in ${JSON.stringify(lines)}`)
  }
})

test('ES_TEST_TRANSPORT reaches the sources the tests make', () => {
  // Only the default transport speaks h2c: the lean one refuses the combination.
  const make = () => new EventSource(`${base}/never`, { http2PriorKnowledge: true }).close()
  if (TRANSPORT === 'lean') assert.throws(make, TypeError)
  else make()
})

test('both transports stream over HTTP/1.1; http2PriorKnowledge speaks h2c', async () => {
  for (const transport of TRANSPORTS) {
    const r = await streamOnce(base, token(`plain-${transport}`), { transport })
    assert.equal(r.version, 'HTTP/1.1', transport)
    assert.equal(r.tls, false)
  }
  const h2 = await streamOnce(base, token('h2c'), { http2PriorKnowledge: true })
  assert.equal(h2.version, 'HTTP/2.0')
})

test('HTTPS with caCerts: HTTP/2 by ALPN on the default transport, HTTP/1.1 on lean', async () => {
  const caCerts = lines['ca-cert']
  const def = await streamOnce(lines.tls, token('tls-default'), { caCerts })
  assert.equal(def.tls, true)
  assert.equal(def.version, 'HTTP/2.0')
  const lean = await streamOnce(lines.tls, token('tls-lean'), { caCerts, transport: 'lean' })
  assert.equal(lean.tls, true)
  assert.equal(lean.version, 'HTTP/1.1')
  // A file: URL names the file too.
  await streamOnce(lines.tls, token('tls-url'), { caCerts: new URL(`file://${caCerts}`) })
})

test('HTTPS without the CA: a connect error that names the certificate problem', async () => {
  for (const transport of TRANSPORTS) {
    const es = new PackageEventSource(script(lines.tls, token(`untrusted-${transport}`), { c1: 'data: x\n\n' }), {
      transport,
      retry: 50,
    })
    const [e] = await record(es, { until: until((ev) => ev.length === 1) })
    assert.equal(e.type, 'error', transport)
    assert.equal(e.kind, 'connect', transport)
    assert.match(e.message, /certificate|issuer|tls/i, transport)
  }
})

test('mutual TLS: clientCert and clientKey are presented; without them the server refuses', async () => {
  const tls = { caCerts: lines['ca-cert'], clientCert: lines['client-cert'], clientKey: lines['client-key'] }
  for (const transport of TRANSPORTS) {
    const r = await streamOnce(lines.mtls, token(`mtls-${transport}`), { ...tls, transport })
    assert.equal(r.client_cert, true, transport)
    assert.equal(r.tls, true)

    const t = token(`mtls-none-${transport}`)
    const es = new PackageEventSource(script(lines.mtls, t, { c1: 'data: x\n\n' }), {
      caCerts: tls.caCerts,
      transport,
      retry: 50,
    })
    const [e] = await record(es, { until: until((ev) => ev.length === 1) })
    assert.equal(e.type, 'error', transport)
    assert.equal(e.readyState, 0, transport)
    assert.equal((await requestLog(base, t)).length, 0, transport)
  }
})

async function proxyLog(user) {
  const res = await fetch(`${base}/proxy-log?user=${encodeURIComponent(user)}`)
  return res.json()
}

test('an http proxy: both transports, http and https targets', async () => {
  const proxyPort = new URL(lines['http-proxy']).port
  for (const transport of TRANSPORTS) {
    const user = token(`hp-${transport}`)
    const proxy = `http://${user}:pw@127.0.0.1:${proxyPort}`
    const t = token(`viaproxy-${transport}`)
    await streamOnce(base, t, { proxy, transport })
    const [entry] = await proxyLog(user)
    assert.equal(entry.kind, 'http', transport)
    assert.equal(entry.allowed, true)
    assert.match(entry.request, new RegExp(`^GET http://127\\.0\\.0\\.1:${server.port}/script\\?t=${t}`))

    // An https target goes through a CONNECT tunnel; TLS is end to end.
    const user2 = token(`hps-${transport}`)
    const proxy2 = `http://${user2}:pw@127.0.0.1:${proxyPort}`
    await streamOnce(lines.tls, token(`viaproxy-tls-${transport}`), { proxy: proxy2, transport, caCerts: lines['ca-cert'] })
    const [tunnel] = await proxyLog(user2)
    assert.match(tunnel.request, /^CONNECT 127\.0\.0\.1:\d+ HTTP\/1\.1$/, transport)
  }
})

test('a socks5 proxy (default transport)', async () => {
  const socksPort = new URL(lines['socks5-proxy']).port
  const user = token('socks')
  const t = token('viasocks')
  await streamOnce(base, t, { proxy: `socks5://${user}:pw@127.0.0.1:${socksPort}` })
  const [entry] = await proxyLog(user)
  assert.equal(entry.kind, 'socks5')
  assert.equal(entry.allowed, true)
  assert.equal(entry.status, 0)
  assert.equal(entry.target, `127.0.0.1:${server.port}`)
})

test('responseTimeout: a server that never answers gives timeout errors, then reconnections', async () => {
  for (const transport of TRANSPORTS) {
    const t = token(`no-answer-${transport}`)
    const es = new PackageEventSource(`${base}/scenario/no-answer?t=${t}`, { transport, retry: 50, responseTimeout: 200 })
    const events = await record(es, { until: until((ev) => ev.length === 2) })
    for (const e of events) {
      assert.equal(e.type, 'error', transport)
      assert.equal(e.kind, 'timeout', transport)
      assert.equal(e.readyState, 0, transport)
      assert.match(e.message, /responseTimeout/, transport)
    }
  }
  assert.throws(() => new PackageEventSource(`${base}/never`, { responseTimeout: '1' }), TypeError)
})

test('an https → http redirect is refused unless allowHttpsDowngrade', async () => {
  const caCerts = lines['ca-cert']
  const redirect = (t) => {
    const plain = script(base, t, { c1: 'data: hi\n\n', hold1: 1 })
    return script(lines.tls, `${t}x`, { s1: 302, loc1: plain })
  }
  for (const transport of TRANSPORTS) {
    const t = token(`downgrade-${transport}`)
    const es = new PackageEventSource(redirect(t), { caCerts, transport })
    const [e] = await record(es, { until: until((ev) => ev.length === 1) })
    assert.equal(e.type, 'error', transport)
    assert.equal(e.kind, 'unsupported_scheme', transport)
    assert.equal(e.readyState, 2, transport)
    assert.match(e.message, /https to plain http/, transport)
    assert.deepEqual(await requestLog(base, t), [])
    const allowed = token(`downgrade-ok-${transport}`)
    const ok = new PackageEventSource(redirect(allowed), { caCerts, transport, allowHttpsDowngrade: true })
    const events = await record(ok, { until: twoEvents })
    assert.deepEqual(events.map((x) => [x.type, x.data]), [['open', undefined], ['message', 'hi']])
  }
  assert.throws(() => new PackageEventSource(`${base}/never`, { allowHttpsDowngrade: 1 }), TypeError)
})
