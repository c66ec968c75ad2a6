// examples/node/tail.mjs against the Rust reference (examples/src/bin/tail.rs): the same
// scenarios, the same arguments, the same --json lines and exit codes.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import path from 'node:path'
import { ROOT, cargoBuild, startServer, token, script, runProcess } from './helpers.mjs'

const TAIL_RS = path.join(ROOT, 'target', 'debug', 'tail')
const TAIL_MJS = path.join(ROOT, 'examples', 'node', 'tail.mjs')

let server
let base
before(async () => {
  if (!existsSync(TAIL_RS)) cargoBuild('examples')
  server = await startServer()
  base = server.base
})
after(() => server.stop())

const run = (cmd, args, timeout = 15_000) => runProcess(cmd, args, { timeout })

const both = async (makeUrl, args) => {
  const rs = await run(TAIL_RS, [makeUrl(), ...args])
  const js = await run(process.execPath, [TAIL_MJS, makeUrl(), ...args])
  return { rs, js }
}

const lines = (out) => out.split('\n').filter((l) => l !== '')

const scenarios = [
  ['ids, a named type and --max-events', () => `${base}/stream?count=5&id=1&type=tick`, ['--events', 'tick', '--max-events', '5']],
  [
    'reconnect, then 500 (exit 2)',
    () => script(base, token('tail500'), { c1: 'retry: 50\nid: 7\ndata: one\n\n', s2: 500, c2: 'data: x\n\n' }),
    [],
  ],
  ['wrong Content-Type', () => script(base, token('tailct'), { ct1: 'text/plain', c1: 'data: x\n\n' }), []],
  ['204 at once', () => script(base, token('tail204'), { s1: 204 }), []],
  [
    'non-ASCII, escapes, multi-line and control characters',
    () =>
      script(base, token('tailutf'), {
        c1: 'data: é😀 "q" \\ back\ndata: line2\ttab\x01\x1b\n\nevent: error\ndata: named error\n\n',
      }),
    ['--events', 'error,unused'],
  ],
  ['the tricky stream', () => `${base}/scenario/tricky?t=${token('tailtricky')}`, ['--events', 'x']],
  ...controlScenarios(),
  [
    'headers, method, body, last-event-id',
    () => script(base, token('tailopts'), { c1: 'data: a\n\n', hold1: 1 }),
    ['--header', 'X-A: 1', '--method', 'POST', '--body', 'b', '--last-event-id', 'L', '--retry', '100', '--max-events', '1'],
  ],
  ['unsupported scheme', () => 'ftp://127.0.0.1/x', []],
]

for (const [name, makeUrl, args] of scenarios) {
  test(`tail --json: ${name}`, async () => {
    const { rs, js } = await both(makeUrl, ['--json', ...args])
    assert.notEqual(rs.code, null, 'the Rust tail was killed (timeout)')
    assert.equal(js.code, rs.code, `exit codes differ: rust ${rs.code}, node ${js.code}; stderr: ${js.stderr}`)
    const a = lines(rs.stdout)
    const b = lines(js.stdout)
    assert.ok(a.length > 0)
    assert.deepEqual(b.map((l) => JSON.parse(l)), a.map((l) => JSON.parse(l)))
    // Not only the same values: the same bytes (key order, compact separators, UTF-8).
    assert.deepEqual(b, a)
  })
}

// Messages named `error` (printed always, counted only when listened to) and `open` (printed
// only when listened to), and control characters (ESC, BEL, U+0085, DEL, tab) in the type, the
// id and the data.
const CONTROL_STREAM =
  'data: one\n\n' +
  'event: error\nid: e\x1b1\ndata: named error \x07\n\n' +
  'event: open\ndata: named open\n\n' +
  'event: t\x1b[31m\u0085\x7f\nid: i\td\x07\ndata: a\tb\x1b[2Jc\u0085d\x00e\u009ff\u00a0g\\h\n\n' +
  'data: two\n\ndata: three\n\n'

function controlScenarios() {
  const url = (name) => () => script(base, token(name), { c1: CONTROL_STREAM, hold1: 1 })
  return [
    // Not counted: one, two, three are the 3 (the named error is printed between them).
    ['a message named error, not listened to', url('tailerr1'), ['--max-events', '3']],
    // Counted: one and the named error are the 2.
    ['a message named error, listened to', url('tailerr2'), ['--events', 'error', '--max-events', '2']],
    ['a message named open, listened to', url('tailopen'), ['--events', 'open', '--max-events', '3']],
    [
      'control characters in type, id and data',
      url('tailctl'),
      // one, the named type, two, three.
      ['--events', `t\x1b[31m\u0085\x7f`, '--max-events', '4'],
    ],
  ]
}

for (const [name, makeUrl, args] of controlScenarios()) {
  test(`tail text: ${name}`, async () => {
    const { rs, js } = await both(makeUrl, args)
    assert.equal(js.code, rs.code, `exit codes differ: rust ${rs.code}, node ${js.code}; stderr: ${js.stderr}`)
    assert.equal(rs.code, 0)
    assert.ok(lines(rs.stdout).length > 2)
    assert.equal(js.stdout, rs.stdout)
    // Nothing that drives a terminal is left (C0 but LF, DEL, C1).
    assert.doesNotMatch(js.stdout, /[\x00-\x09\x0b-\x1f\x7f-\x9f]/)
  })
}

test('tail text: control characters are escaped as the Rust tail escapes them', async () => {
  const { js } = await both(() => script(base, token('tailesc'), { c1: CONTROL_STREAM, hold1: 1 }), [
    '--events',
    `error,t\x1b[31m\u0085\x7f`,
    '--max-events',
    '4',
  ])
  assert.deepEqual(lines(js.stdout), [
    'open',
    'message: one',
    'error #e\\u{1b}1: named error \\u{7}',
    't\\u{1b}[31m\\u{85}\\u{7f} #i\\td\\u{7}: a\\tb\\u{1b}[2Jc\\u{85}d\\u{0}e\\u{9f}f\u00a0g\\\\h',
    // The last event ID stays.
    'message #i\\td\\u{7}: two',
  ])
})

test('tail human output matches too', async () => {
  const { rs, js } = await both(
    () => script(base, token('tailhuman'), { c1: 'retry: 50\nid: 3\ndata: a\\b\ndata: c\r\n\n', s2: 404, c2: 'x' }),
    [],
  )
  assert.equal(rs.code, 2)
  assert.equal(js.code, 2)
  assert.deepEqual(lines(js.stdout), lines(rs.stdout))
})

test('tail: bad arguments and invalid URLs exit 64', async () => {
  for (const args of [[], ['http://exa mple/'], [`${base}/x`, '--retry', 'soon'], [`${base}/x`, '--bogus']]) {
    const rs = await run(TAIL_RS, args)
    const js = await run(process.execPath, [TAIL_MJS, ...args])
    assert.equal(rs.code, 64)
    assert.equal(js.code, 64, JSON.stringify(args))
    assert.equal(js.stdout, '')
    assert.match(js.stderr, /tail: /)
  }
})

test('tail: SIGINT closes the source and exits 130', async () => {
  const url = script(base, token('tailint'), { c1: 'data: a\n\n', hold1: 1 })
  const p = spawn(process.execPath, [TAIL_MJS, url, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  await new Promise((resolve) => {
    p.stdout.on('data', (d) => {
      out += d
      if (out.includes('"kind":"message"')) resolve()
    })
  })
  const code = await new Promise((resolve) => {
    p.on('exit', (c) => resolve(c))
    p.kill('SIGINT')
  })
  assert.equal(code, 130)
})
