// NODE_DEBUG=eventsource-native: the core's records on stderr in util.debuglog's format
// (`EVENTSOURCE-NATIVE <pid>: LEVEL message`), each in a child node process; nothing at all
// when NODE_DEBUG does not name the section.
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

// One message, the end of the stream, a reconnection answered 204: every kind of record. The
// child prints its pid, then a line of util.debuglog's own for the same section.
const PROGRAM = `
const util = require('node:util')
const { EventSource } = require(${JSON.stringify(ENTRY)})
console.log(process.pid)
util.debuglog('eventsource-native')('probe from debuglog')
const es = new EventSource(process.argv[1])
console.log(es.url)
es.onerror = () => { if (es.readyState === EventSource.CLOSED) console.log('closed') }
`

async function child(url, env) {
  const e = { ...process.env }
  delete e.NODE_DEBUG
  delete e.FORCE_COLOR
  delete e.NO_COLOR
  const r = await runProcess(process.execPath, ['-e', PROGRAM, url], { timeout: 15_000, env: { ...e, ...env } })
  const [pid, printedUrl] = r.stdout.split('\n')
  return { ...r, pid, url: printedUrl }
}

const streamUrl = () => script(base, token('log'), { c1: 'retry: 20\ndata: one\n\n' })

test('NODE_DEBUG=eventsource-native: connecting, open, reconnecting, failed, closed, as debuglog prints', async () => {
  const url = streamUrl()
  const r = await child(url, { NODE_DEBUG: 'eventsource-native' })
  assert.equal(r.code, 0, r.stderr)
  assert.match(r.stdout, /closed\n$/)
  const lines = r.stderr.split('\n').filter((l) => l !== '')
  const prefix = `EVENTSOURCE-NATIVE ${r.pid}: `
  assert.equal(lines[0], `${prefix}probe from debuglog`)
  for (const l of lines) assert.ok(l.startsWith(prefix), l)
  const records = lines.slice(1).map((l) => l.slice(prefix.length))
  // The records name the source by its URL.
  const at = r.url.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  const want = [
    `DEBUG ${at}: connecting`,
    `INFO ${at}: open`,
    `WARN ${at}: .+; reconnecting in 20 ms`,
    `DEBUG ${at}: connecting`,
    `ERROR ${at}: failed: .*204.*`,
    `DEBUG ${at}: closed`,
  ]
  assert.equal(records.length, want.length, JSON.stringify(records))
  records.forEach((rec, i) => assert.match(rec, new RegExp(`^${want[i]}$`)))
})

test('debuglog\'s rule for NODE_DEBUG: lists, wildcards, any case; colors as debuglog colors', async () => {
  for (const NODE_DEBUG of ['http,eventsource-native', 'eventsource-*', 'EventSource-Native', '*']) {
    const r = await child(streamUrl(), { NODE_DEBUG })
    // (`*` also turns on Node's own sections.)
    assert.match(r.stderr, /^EVENTSOURCE-NATIVE \d+: probe from debuglog$/m, NODE_DEBUG)
    assert.match(r.stderr, /^EVENTSOURCE-NATIVE \d+: INFO .*: open$/m, NODE_DEBUG)
  }
  // FORCE_COLOR: debuglog colors the pid; the core's records have the very same prefix.
  const r = await child(streamUrl(), { NODE_DEBUG: 'eventsource-native', FORCE_COLOR: '3' })
  const lines = r.stderr.split('\n').filter((l) => l.startsWith('EVENTSOURCE-NATIVE'))
  const prefix = lines[0].slice(0, lines[0].indexOf('probe from debuglog'))
  assert.match(prefix, /\x1b\[/)
  assert.ok(lines.length >= 6)
  for (const l of lines) assert.ok(l.startsWith(prefix), JSON.stringify(l))
})

test('without the section in NODE_DEBUG: nothing on stderr', async () => {
  for (const NODE_DEBUG of [undefined, '', 'http,net', 'eventsource', 'eventsource-native-x']) {
    const env = NODE_DEBUG === undefined ? {} : { NODE_DEBUG }
    const r = await child(streamUrl(), env)
    assert.equal(r.code, 0)
    assert.match(r.stdout, /closed\n$/)
    assert.equal(r.stderr, '', JSON.stringify(NODE_DEBUG))
  }
})
