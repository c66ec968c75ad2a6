// What the server answered: an error about a response carries its headers (a fetch Headers)
// and the start of its body; `responseHeaders` has the headers of the response that opened the
// connection; an LLM-style POST stream is requested once and ends normally.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { EventSource, startServer, token, script, requestLog, record, sleep } from './helpers.mjs'
import { ErrorEvent, EventSourceError } from '../index.mjs'

let server
let base
before(async () => {
  server = await startServer()
  base = server.base
})
after(() => server.stop())

const API_ERROR = '{"error":{"message":"Incorrect API key provided","type":"invalid_request_error"}}'

/** The first error event of `es` (it is closed afterwards). */
function firstError(es, timeout = 5000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      es.close()
      reject(new Error('no error event'))
    }, timeout)
    es.addEventListener('open', () => reject(new Error('unexpected open')))
    es.addEventListener('error', (e) => {
      clearTimeout(timer)
      resolve({ event: e, readyState: es.readyState })
      es.close()
    })
  })
}

test('a JSON 401: status, the response headers and the JSON body on the error event', async () => {
  const t = token('401')
  const es = new EventSource(
    script(base, t, { s1: 401, ct1: 'application/json', hdr1: 'x-request-id: req_123', c1: API_ERROR }),
  )
  const { event, readyState } = await firstError(es)
  assert.ok(event instanceof ErrorEvent)
  assert.equal(readyState, EventSource.CLOSED)
  assert.equal(event.kind, 'http_status')
  assert.equal(event.status, 401)
  assert.ok(event.headers instanceof Headers)
  assert.equal(event.headers.get('x-request-id'), 'req_123')
  assert.equal(event.headers.get('X-Request-ID'), 'req_123')
  assert.equal(event.headers.get('content-type'), 'application/json')
  assert.equal(event.body, API_ERROR)
  assert.equal(JSON.parse(event.body).error.message, 'Incorrect API key provided')
  // Enumerable, like the other fields (loggers see them).
  for (const name of ['headers', 'body']) {
    assert.equal(Object.getOwnPropertyDescriptor(ErrorEvent.prototype, name).enumerable, true)
  }
  await sleep(100)
  assert.equal((await requestLog(base, t)).length, 1)
})

test('a 429 with Retry-After; the same fields on the EventSourceError of `for await`', async () => {
  const url = () => script(base, token('429'), { s1: 429, ct1: 'application/json', hdr1: 'Retry-After: 7', c1: '{}' })
  const { event } = await firstError(new EventSource(url()))
  assert.equal(event.status, 429)
  assert.equal(event.headers.get('retry-after'), '7')
  assert.equal(Number(event.headers.get('Retry-After')), 7)
  assert.equal(event.body, '{}')

  const es = new EventSource(url())
  await assert.rejects(
    async () => {
      for await (const _ of es) assert.fail('no message expected')
    },
    (err) => {
      assert.ok(err instanceof EventSourceError)
      assert.equal(err.status, 429)
      assert.equal(err.kind, 'http_status')
      assert.equal(err.headers.get('retry-after'), '7')
      assert.equal(err.body, '{}')
      assert.ok(err.cause instanceof ErrorEvent)
      return true
    },
  )
})

test('maxErrorBody keeps that many bytes of the body; a cut character becomes U+FFFD', async () => {
  const body = `${'x'.repeat(100)}ééé`
  const cases = [
    [undefined, body],
    [{ maxErrorBody: 10 }, 'x'.repeat(10)],
    [{ maxErrorBody: 0 }, ''],
    // 100 + 3 bytes: é is 2 bytes, so the cut falls inside the second.
    [{ maxErrorBody: 103 }, `${'x'.repeat(100)}é\uFFFD`],
  ]
  for (const [init, want] of cases) {
    const es = new EventSource(script(base, token('maxbody'), { s1: 500, ct1: 'text/plain', c1: body }), init)
    const { event } = await firstError(es)
    assert.equal(event.status, 500)
    assert.equal(event.body, want, JSON.stringify(init))
    assert.equal(event.headers.get('content-type'), 'text/plain')
  }
  // A body of 50 KB (a URL holds at most 64 KiB) is kept whole by default (64 KiB).
  const big = 'y'.repeat(50_000)
  const es = new EventSource(`${base}/script?t=${token('bigbody')}&s1=503&ct1=text%2Fplain&c1=${big}`)
  const { event } = await firstError(es)
  assert.equal(event.body, big)
})

test('a 200 with the wrong Content-Type carries its answer too; an empty body is ""', async () => {
  const es = new EventSource(script(base, token('ctans'), { ct1: 'text/html', hdr1: 'x-a: 1', c1: '<html>' }))
  const { event } = await firstError(es)
  assert.equal(event.kind, 'content_type')
  assert.equal(event.status, 200)
  assert.equal(event.headers.get('x-a'), '1')
  assert.equal(event.body, '<html>')

  const es2 = new EventSource(script(base, token('empty'), { s1: 403, ct1: 'none' }))
  const { event: e2 } = await firstError(es2)
  assert.equal(e2.status, 403)
  assert.equal(e2.body, '')
  assert.equal(e2.headers.get('content-type'), null)
})

test('errors that are not about a response: headers and body are null', async () => {
  const es = new EventSource('http://127.0.0.1:9/never', { retryInitial: false })
  const { event } = await firstError(es)
  assert.equal(event.kind, 'connect')
  assert.equal(event.status, undefined)
  assert.equal(event.headers, null)
  assert.equal(event.body, null)

  // A stream that ends: error(CONNECTING), nothing about a response either.
  const es2 = new EventSource(script(base, token('eof'), { c1: 'retry: 10\ndata: x\n\n' }))
  const events = await record(es2, { until: (ev) => ev.some((e) => e.type === 'error') })
  assert.equal(events.at(-1).readyState, EventSource.CONNECTING)

  // ErrorEvent can be made by hand, with or without them.
  const made = new ErrorEvent('error', { status: 401, headers: { 'x-a': '1' }, body: 'b' })
  assert.equal(made.headers.get('x-a'), '1')
  assert.equal(made.body, 'b')
  const bare = new ErrorEvent('error')
  assert.equal(bare.headers, null)
  assert.equal(bare.body, null)
})

test('responseHeaders: null before open, the opening response\'s headers from the open listener on', async () => {
  const t = token('openhdr')
  const es = new EventSource(script(base, t, { hdr1: 'x-served-by: node-7', c1: 'data: a\n\n', hold1: 1 }))
  assert.equal(es.responseHeaders, null)
  const seen = await new Promise((resolve) => {
    es.onopen = () => {
      const h = es.responseHeaders
      resolve({ h, again: es.responseHeaders })
    }
  })
  assert.ok(seen.h instanceof Headers)
  assert.equal(seen.h, seen.again) // the same object until the next open
  assert.equal(seen.h.get('x-served-by'), 'node-7')
  assert.match(seen.h.get('content-type'), /^text\/event-stream/)
  await new Promise((resolve) => es.addEventListener('message', resolve))
  assert.equal(es.responseHeaders.get('x-served-by'), 'node-7')
  es.close()
  // Still readable after close (the last connection's).
  assert.equal(es.responseHeaders.get('x-served-by'), 'node-7')
})

test('responseHeaders is exact per open even when the listeners fall behind the connection', async () => {
  // Three connections that each open and end at once (retry: 0), each with its own header,
  // then a 204. The first open listener blocks the thread while the next ones open: every open
  // listener must still see the headers of its own response.
  const t = token('openseq')
  const params = { s4: 204 }
  for (const k of [1, 2, 3]) {
    params[`hdr${k}`] = `x-k: ${k}`
    params[`c${k}`] = `retry: 0\ndata: m${k}\n\n`
  }
  const es = new EventSource(script(base, t, params))
  const seen = []
  es.onopen = () => {
    seen.push(es.responseHeaders.get('x-k'))
    if (seen.length === 1) {
      const until = Date.now() + 400
      while (Date.now() < until) {
        // Busy: the connection goes on without this thread.
      }
    }
  }
  const messages = []
  es.onmessage = (e) => messages.push([e.data, es.responseHeaders.get('x-k')])
  await new Promise((resolve) => {
    es.onerror = () => {
      if (es.readyState === EventSource.CLOSED) resolve()
    }
  })
  assert.deepEqual(seen, ['1', '2', '3'])
  assert.deepEqual(messages, [
    ['m1', '1'],
    ['m2', '2'],
    ['m3', '3'],
  ])
})

test('non-ASCII header values are byte strings, as fetch gives them', async () => {
  const es = new EventSource(
    `${base}/script?t=${token('utf8hdr')}&hdr1=x-name%3A%20caf%C3%A9&s1=400&ct1=text%2Fplain&c1=x`,
  )
  const { event } = await firstError(es)
  const raw = event.headers.get('x-name')
  assert.equal(raw, 'caf\u00c3\u00a9')
  assert.equal(Buffer.from(raw, 'latin1').toString(), 'café')
})

test('an LLM-style POST: one request, the loop ends normally after [DONE]', async () => {
  const t = token('llm')
  const url = `${base}/llm?t=${t}&tokens=3`
  const prompt = JSON.stringify({ model: 'm', stream: true, messages: [{ role: 'user', content: 'hi' }] })
  const es = new EventSource(url, {
    method: 'POST',
    headers: { Authorization: 'Bearer sk-test', 'Content-Type': 'application/json' },
    body: prompt,
  })
  const errors = []
  es.addEventListener('error', (e) => errors.push([es.readyState, e.kind, e.message]))
  let text = ''
  const data = []
  for await (const e of es) {
    data.push(e.data)
    if (e.data === '[DONE]') continue
    text += JSON.parse(e.data).choices[0].delta.content
  }
  assert.equal(text, 'tok1 tok2 tok3 ')
  assert.equal(data.at(-1), '[DONE]')
  assert.equal(data.length, 4)
  assert.equal(es.readyState, EventSource.CLOSED)
  // The end of the stream closed the source: one error, CLOSED, saying it is not sent again.
  assert.equal(errors.length, 1)
  assert.equal(errors[0][0], EventSource.CLOSED)
  assert.equal(errors[0][1], 'stream_ended')
  assert.match(errors[0][2], /not sent again/)
  // Requested exactly once, with the method, headers and body given.
  await sleep(200)
  const log = await requestLog(base, t)
  assert.equal(log.length, 1)
  assert.equal(log[0].method, 'POST')
  assert.equal(log[0].headers.authorization, 'Bearer sk-test')
  assert.equal(log[0].headers['content-type'], 'application/json')
  assert.equal(log[0].body, prompt)
})

test('an LLM-style POST: break at [DONE] closes the source; a 401 rejects with the body', async () => {
  const t = token('llmbreak')
  const es = new EventSource(`${base}/llm?t=${t}&tokens=5&ms=20`, { method: 'POST', body: '{}' })
  const got = []
  for await (const e of es) {
    if (e.data === '[DONE]') break
    got.push(JSON.parse(e.data).choices[0].delta.content)
  }
  assert.deepEqual(got, ['tok1 ', 'tok2 ', 'tok3 ', 'tok4 ', 'tok5 '])
  assert.equal(es.readyState, EventSource.CLOSED)
  assert.equal((await requestLog(base, t)).length, 1)

  const t2 = token('llm401')
  const bad = new EventSource(
    script(base, t2, { s1: 401, ct1: 'application/json', hdr1: 'x-request-id: req_9', c1: API_ERROR }),
    { method: 'POST', body: '{}' },
  )
  const err = await (async () => {
    try {
      for await (const _ of bad) assert.fail('no message expected')
    } catch (e) {
      return e
    }
  })()
  assert.ok(err instanceof EventSourceError)
  assert.equal(err.status, 401)
  assert.equal(err.headers.get('x-request-id'), 'req_9')
  assert.equal(JSON.parse(err.body).error.type, 'invalid_request_error')
  assert.equal((await requestLog(base, t2)).length, 1)
})
