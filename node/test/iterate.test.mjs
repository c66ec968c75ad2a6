// `for await (const e of source)`: every MessageEvent (the `message` type and named types) in
// order; ends when the source is closed (close(), break, an aborted signal, a 204); throws an
// EventSourceError when it fails for good; a consumer that falls behind holds the stream back.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { EventSource, startServer, token, script, requestLog, sleep } from './helpers.mjs'
import { ErrorEvent, EventSourceError } from '../index.mjs'

let server
let base
before(async () => {
  server = await startServer()
  base = server.base
})
after(() => server.stop())

async function socketClosed(t) {
  for (let i = 0; i < 100; i++) {
    const log = await requestLog(base, t)
    if (log[0]?.done_ms != null) return true
    await sleep(20)
  }
  return false
}

test('yields message and named events in order; break closes the source', async () => {
  const t = token('iter')
  const body = 'data: 1\n\nevent: tick\nid: 7\ndata: 2\n\n: comment\ndata: 3\n\n'
  const es = new EventSource(script(base, t, { c1: body, hold1: 1 }))
  const listened = []
  es.addEventListener('message', (e) => listened.push(e.data))
  const got = []
  for await (const e of es) {
    assert.ok(e instanceof MessageEvent)
    assert.equal(es.readyState, EventSource.OPEN)
    got.push([e.type, e.data, e.lastEventId])
    if (got.length === 3) break
  }
  assert.deepEqual(got, [
    ['message', '1', ''],
    ['tick', '2', '7'],
    ['message', '3', '7'],
  ])
  assert.deepEqual(listened, ['1', '3']) // listeners still get their events
  assert.equal(es.readyState, EventSource.CLOSED)
  assert.ok(await socketClosed(t), 'break closed the connection')
})

test('close() from elsewhere ends the loop; so does an aborted signal', async () => {
  const es = new EventSource(script(base, token('iterclose'), { c1: 'data: a\n\n', hold1: 1 }))
  setTimeout(() => es.close(), 200)
  const got = []
  for await (const e of es) got.push(e.data)
  assert.deepEqual(got, ['a'])

  const ac = new AbortController()
  const es2 = new EventSource(script(base, token('iterabort'), { c1: 'data: b\n\n', hold1: 1 }), {
    signal: ac.signal,
  })
  const got2 = []
  for await (const e of es2) {
    got2.push(e.data)
    ac.abort()
  }
  assert.deepEqual(got2, ['b'])
  assert.equal(es2.readyState, EventSource.CLOSED)
})

test('a fatal error: the messages before it, then an EventSourceError', async () => {
  const t = token('iterfail')
  // Connection 1: two events and the end; connection 2: HTTP 500 fails the source.
  const es = new EventSource(script(base, t, { c1: 'retry: 20\ndata: x\n\ndata: y\n\n', s2: 500, c2: 'oops' }))
  const got = []
  await assert.rejects(
    (async () => {
      for await (const e of es) got.push(e.data)
    })(),
    (err) => {
      assert.ok(err instanceof EventSourceError)
      assert.equal(err.name, 'EventSourceError')
      assert.equal(err.kind, 'http_status')
      assert.equal(err.status, 500)
      assert.match(err.message, /500/)
      assert.ok(err.cause instanceof ErrorEvent)
      assert.equal(err.cause.status, 500)
      return true
    },
  )
  assert.deepEqual(got, ['x', 'y'])
  // A new loop over the failed source throws the same failure at once.
  await assert.rejects(
    (async () => {
      for await (const e of es) got.push(e)
    })(),
    (err) => err instanceof EventSourceError && err.status === 500,
  )
})

test('an onerror that calls close() does not hide a failure from the loop', async () => {
  const es = new EventSource(script(base, token('iterfail2'), { s1: 503, c1: 'busy' }))
  es.onerror = () => es.close()
  await assert.rejects(
    (async () => {
      for await (const e of es) assert.fail(`got ${e.data}`)
    })(),
    (err) => err instanceof EventSourceError && err.status === 503,
  )
})

test('a 204 (the server\'s "stop") ends the loop normally; so does a closed source', async () => {
  const t = token('iter204')
  const es = new EventSource(script(base, t, { c1: 'retry: 20\ndata: only\n\n' }))
  const got = []
  for await (const e of es) got.push(e.data)
  assert.deepEqual(got, ['only'])
  assert.equal(es.readyState, EventSource.CLOSED)
  assert.equal((await requestLog(base, t)).length, 2)

  const closed = new EventSource(script(base, token('iterclosed'), { c1: 'data: z\n\n', hold1: 1 }))
  closed.close()
  for await (const e of closed) assert.fail(`got ${e.data}`)
})

test('a consumer that falls behind holds the stream back, then gets every event in order', async () => {
  const t = token('iterslow')
  const count = 48 * 1024
  // 48 MiB: more than the native queue (8 MiB), the iterator's queue (4 MiB) and the sockets hold.
  const es = new EventSource(`${base}/stream?t=${t}&count=${count}&size=1024`)
  let n = 0
  let stalledWhileBehind
  for await (const e of es) {
    const seq = JSON.parse(e.data).seq
    assert.equal(seq, ++n)
    if (n === 1) {
      // Stall: the stream must stop (backpressure), not pile up in memory.
      await sleep(1500)
      stalledWhileBehind = (await requestLog(base, t))[0].done_ms === null
    }
    if (n === count) break
  }
  assert.equal(n, count)
  assert.equal(stalledWhileBehind, true, 'the server finished sending while the consumer stalled')
})

test('two loops over one source each get every message', async () => {
  const es = new EventSource(script(base, token('iter2'), { c1: 'data: 1\n\ndata: 2\n\n', hold1: 1 }))
  const a = []
  const b = []
  const loop = async (out) => {
    for await (const e of es) {
      out.push(e.data)
      if (out.length === 2) return
    }
  }
  await Promise.all([loop(a), loop(b)])
  assert.deepEqual([a, b], [
    ['1', '2'],
    ['1', '2'],
  ])
})
