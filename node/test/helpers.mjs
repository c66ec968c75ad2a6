// Test fixtures: one real testserver per test file, spawned from target/debug/testserver
// (built if missing) with --exit-on-eof, so it dies with the test process; and the class the
// connection tests use, which takes its transport from ES_TEST_TRANSPORT.
import { spawn, spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { EventSource as PackageEventSource } from '../index.mjs'

/** `ES_TEST_TRANSPORT=lean` runs the connection tests on the lean transport. */
export const TRANSPORT = process.env.ES_TEST_TRANSPORT || undefined
if (TRANSPORT !== undefined && TRANSPORT !== 'default' && TRANSPORT !== 'lean') {
  throw new Error(`ES_TEST_TRANSPORT must be "default" or "lean", got ${JSON.stringify(TRANSPORT)}`)
}

/** `init` plus the transport of ES_TEST_TRANSPORT (unless it names one itself). */
export function withTransport(init) {
  if (TRANSPORT === undefined || (init != null && init.transport !== undefined)) return init
  if (init != null && typeof init !== 'object') return init // let the class reject it
  return { ...init, transport: TRANSPORT }
}

/** The package's class, with the transport of ES_TEST_TRANSPORT. */
export class EventSource extends PackageEventSource {
  constructor(...args) {
    if (args.length >= 1) args[1] = withTransport(args[1])
    super(...args)
  }
}

export const NODE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
export const ROOT = path.resolve(NODE_DIR, '..')
export const TESTSERVER = path.join(ROOT, 'target', 'debug', 'testserver')

export function cargoBuild(...pkgs) {
  const args = ['build', '-q', ...pkgs.flatMap((p) => ['-p', p])]
  const r = spawnSync(process.env.CARGO || 'cargo', args, { cwd: ROOT, stdio: 'inherit' })
  if (r.status !== 0) throw new Error(`cargo ${args.join(' ')} failed`)
}

/**
 * Starts a testserver; resolves to { base, port, lines, stop() }. `args` such as ['--all'] start
 * the extra listeners: `lines` then maps each extra banner line's name to its value
 * (`tls`, `mtls`, `http-proxy`, `socks5-proxy`, `ca-cert`, `client-cert`, `client-key`...).
 */
export async function startServer({ args = [] } = {}) {
  if (!existsSync(TESTSERVER)) cargoBuild('testserver')
  const proc = spawn(TESTSERVER, ['--exit-on-eof', ...args], { stdio: ['pipe', 'pipe', 'inherit'] })
  const extra = args.some((a) => ['--tls', '--proxies', '--all'].includes(a))
  const banner = await new Promise((resolve, reject) => {
    let buf = ''
    proc.stdout.on('data', function onData(d) {
      buf += d
      const lines = buf.split('\n')
      const done = extra ? lines.slice(0, -1).includes('ready') : lines.length > 1
      if (done) {
        proc.stdout.off('data', onData)
        resolve(lines.slice(0, extra ? lines.indexOf('ready') : 1))
      }
    })
    proc.once('exit', (code) => reject(new Error(`testserver exited (${code}) before listening`)))
  })
  const m = /^listening on (http:\/\/127\.0\.0\.1:(\d+))$/.exec(banner[0].trim())
  if (!m) throw new Error(`unexpected testserver banner: ${banner[0]}`)
  const lines = {}
  for (const line of banner.slice(1)) {
    // NAME WORD VALUE: split on the first two spaces (a path may contain spaces).
    const a = line.indexOf(' ')
    const b = line.indexOf(' ', a + 1)
    lines[line.slice(0, a)] = line.slice(b + 1)
  }
  proc.stdout.resume()
  // Never keep the test process alive on the server's account.
  proc.unref()
  proc.stdout.unref?.()
  proc.stdin.unref?.()
  return {
    base: m[1],
    port: Number(m[2]),
    lines,
    stop() {
      proc.stdin.end()
      proc.kill()
    },
  }
}

/** Runs `cmd args` to its exit, collecting stdout and stderr; after `timeout` ms it is killed
 *  (SIGKILL). Resolves { code, signal, stdout, stderr, timedOut, ms }. */
export function runProcess(cmd, args, { timeout = 15_000, env } = {}) {
  return new Promise((resolve) => {
    const t0 = performance.now()
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...(env ? { env } : {}) })
    let stdout = ''
    let stderr = ''
    p.stdout.on('data', (d) => (stdout += d))
    p.stderr.on('data', (d) => (stderr += d))
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      p.kill('SIGKILL')
    }, timeout)
    p.on('exit', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr, timedOut, ms: performance.now() - t0 })
    })
  })
}

let tokenCounter = 0
/** A fresh token for /script and /log. */
export function token(name = 't') {
  return `${name}-${process.pid}-${++tokenCounter}`
}

/** A /script URL: params like { c1: 'data: x\n\n', s2: 204 } are percent-encoded. */
export function script(base, t, params = {}) {
  const q = new URLSearchParams({ t })
  let s = q.toString()
  for (const [k, v] of Object.entries(params)) s += `&${k}=${encodeURIComponent(String(v))}`
  return `${base}/script?${s}`
}

export async function requestLog(base, t) {
  const res = await fetch(`${base}/log?t=${encodeURIComponent(t)}`)
  return res.json()
}

/**
 * Records every event of `es` as plain objects (with the readyState seen by the listener)
 * until `until(events)` is true or the timeout elapses; then closes the source.
 */
export function record(es, { types = ['message'], until, timeout = 5000 } = {}) {
  const events = []
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      es.close()
      reject(new Error(`timeout; got ${JSON.stringify(events)}`))
    }, timeout)
    const on = (e) => {
      const rec = { type: e.type, readyState: es.readyState }
      if (e instanceof MessageEvent) Object.assign(rec, { data: e.data, lastEventId: e.lastEventId, origin: e.origin })
      else if (e.type === 'error') Object.assign(rec, { code: e.code, message: e.message, kind: e.kind })
      events.push(rec)
      if (until(events, e)) {
        clearTimeout(timer)
        es.close()
        resolve(events)
      }
    }
    for (const t of new Set(['open', 'error', 'message', ...types])) es.addEventListener(t, on)
  })
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
