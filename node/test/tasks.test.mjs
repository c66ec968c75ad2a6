// Task semantics: the spec dispatches each event from a task of its own, so everything a
// listener queues (promise reactions, queueMicrotask, process.nextTick) runs before the next
// event. Here open, a message and a reconnection error reach JavaScript in one native wake-up
// (a stream of one event that then ends, taken after the thread was busy), and the tests check
// that a checkpoint separates them. Each scenario runs in a child process (test/fixtures).
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { startServer, token, script } from './helpers.mjs'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const CHILD = path.join(HERE, 'fixtures', 'task-order.mjs')
const NO_TICK = path.join(HERE, 'fixtures', 'no-tick.cjs')

let server
let base
before(async () => {
  server = await startServer()
  base = server.base
})
after(() => server.stop())

function run(mode, nodeArgs = []) {
  // One event, then the body ends: open, message, error(0) (then, after retry, 204: error(2)).
  const url = script(base, token(`tasks-${mode}`), { c1: 'retry: 100\ndata: one\n\n' })
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [...nodeArgs, CHILD, url, mode], { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    p.stdout.on('data', (d) => (out += d))
    const timer = setTimeout(() => p.kill('SIGKILL'), 20_000)
    p.on('exit', (code) => {
      clearTimeout(timer)
      if (code === 0) resolve(JSON.parse(out))
      else reject(new Error(`child exited ${code}: ${out}`))
    })
  })
}

test('what a listener queues runs before the next event: nextTick, promises, async chains', async () => {
  const log = await run('order')
  assert.deepEqual(log, [
    ['open', 1],
    ['open+nextTick', 1],
    ['open+1tick', 1],
    ['open+3ticks', 1],
    ['message', 1, 'one'],
    ['message+1tick', 1],
    ['error', 0],
  ])
})

test('a continuation of the open listener that closes the source: no later event', async () => {
  assert.deepEqual(await run('close'), [['open', 1]])
})

test('without process._tickCallback: an await between events still runs the listener\'s promises first', async () => {
  const log = await run('order', ['--require', NO_TICK])
  const at = (name) => log.find((e) => e[0] === name)
  assert.deepEqual(at('open+1tick'), ['open+1tick', 1])
  assert.deepEqual(at('message+1tick'), ['message+1tick', 1])
  assert.deepEqual(log.map((e) => e[0]).filter((n) => !n.includes('+')), ['open', 'message', 'error'])
  assert.deepEqual(await run('close', ['--require', NO_TICK]), [['open', 1]])
})
