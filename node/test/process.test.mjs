// Process-level behaviour, each in a child node process: an open source keeps the process
// alive, a closed or failed one does not; listener exceptions are reported as uncaught. (What
// garbage collection does, and create/close cycles: lifetime.test.mjs.)
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import path from 'node:path'
import { NODE_DIR, startServer, token, script, runProcess } from './helpers.mjs'

let server
let base
before(async () => {
  server = await startServer()
  base = server.base
})
after(() => server.stop())

const ENTRY = path.join(NODE_DIR, 'index.js')

/** Runs `code` (CommonJS, `EventSource` and `URL_` in scope) in a child node; resolves
 *  { code, signal, stdout, stderr, ms } once it exits or `timeout` ms pass (then it is killed). */
function child(code, url, { timeout = 10_000, args = [] } = {}) {
  const src = `const { EventSource } = require(${JSON.stringify(ENTRY)}); const URL_ = ${JSON.stringify(url)};\n${code}`
  return runProcess(process.execPath, [...args, '-e', src], { timeout })
}

test('an open source keeps the process alive; close() lets it exit', async () => {
  const url = script(base, token('alive'), { c1: 'data: x\n\n', hold1: 1 })
  // Never closed: still running after 1.5 s (killed by the harness).
  const open = await child(`const es = new EventSource(URL_); es.onmessage = (e) => console.log(e.data)`, url, {
    timeout: 1500,
  })
  assert.equal(open.timedOut, true, `exited early: ${JSON.stringify(open)}`)
  assert.equal(open.stdout, 'x\n')
  // Closed in a listener: exits by itself, promptly.
  const closed = await child(
    `const es = new EventSource(URL_); es.onmessage = (e) => { console.log(e.data); es.close() }`,
    script(base, token('alive2'), { c1: 'data: y\n\n', hold1: 1 }),
  )
  assert.equal(closed.timedOut, false)
  assert.equal(closed.code, 0)
  assert.equal(closed.stdout, 'y\n')
  assert.ok(closed.ms < 5000)
})

test('a connecting source (reconnect pending) keeps the process alive', async () => {
  const url = script(base, token('conn'), { c1: 'retry: 1000\ndata: x\n\n', c2: 'data: again\n\n', hold2: 1 })
  const r = await child(
    `const es = new EventSource(URL_);
     es.onerror = () => console.log('error', es.readyState);
     es.onmessage = (e) => { console.log(e.data); if (e.data === 'again') es.close() }`,
    url,
  )
  assert.equal(r.timedOut, false)
  assert.equal(r.stdout, 'x\nerror 0\nagain\n')
})

test('a failed source lets the process exit without close()', async () => {
  for (const params of [{ s1: 500 }, { ct1: 'text/plain', c1: 'data: x\n\n' }]) {
    const r = await child(
      `const es = new EventSource(URL_); es.onerror = (e) => console.log('error', es.readyState, e.code)`,
      script(base, token('failed'), params),
    )
    assert.equal(r.timedOut, false, JSON.stringify(r))
    assert.equal(r.code, 0)
    assert.match(r.stdout, /^error 2 (500|200)\n$/)
  }
  // Never connected at all: an unsupported scheme.
  const ftp = await child(`const es = new EventSource('ftp://127.0.0.1/'); es.onerror = () => console.log(es.readyState)`, '')
  assert.equal(ftp.timedOut, false)
  assert.equal(ftp.stdout, '2\n')
})

test('an unreferenced, never-closed source still delivers (it keeps itself alive)', async () => {
  const r = await child(
    `(function () { const es = new EventSource(URL_); let n = 0;
       es.onmessage = (e) => { if (++n === 3) { console.log('done'); es.close() } } })();
     setTimeout(() => globalThis.gc && globalThis.gc(), 10)`,
    script(base, token('unref'), { c1: 'retry: 50\ndata: 1\n\n', split1: '20', pause: 300, c2: 'data: 2\n\ndata: 3\n\n', hold2: 1 }),
    { args: ['--expose-gc'] },
  )
  assert.equal(r.timedOut, false, JSON.stringify(r))
  assert.equal(r.stdout, 'done\n')
})

test('a throwing listener is reported as uncaught and delivery goes on', async () => {
  const r = await child(
    `let errors = 0; process.on('uncaughtException', (e) => { errors++; console.log('uncaught', e.message) });
     const es = new EventSource(URL_);
     es.onmessage = (e) => {
       if (e.data !== '3') throw new Error('boom ' + e.data)
       es.close(); setTimeout(() => console.log('errors', errors), 50)
     }`,
    script(base, token('throw'), { c1: 'data: 1\n\ndata: 2\n\ndata: 3\n\n', hold1: 1 }),
  )
  assert.equal(r.timedOut, false)
  assert.equal(r.stdout, 'uncaught boom 1\nuncaught boom 2\nerrors 2\n')
})
