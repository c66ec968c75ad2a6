// Test fixtures: one real testserver per test file, spawned from target/debug/testserver
// (built if missing) with --exit-on-eof, so it dies with the test process.
import { spawn, spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export const NODE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
export const ROOT = path.resolve(NODE_DIR, '..')
export const TESTSERVER = path.join(ROOT, 'target', 'debug', 'testserver')

export function cargoBuild(...pkgs) {
  const args = ['build', '-q', ...pkgs.flatMap((p) => ['-p', p])]
  const r = spawnSync(process.env.CARGO || 'cargo', args, { cwd: ROOT, stdio: 'inherit' })
  if (r.status !== 0) throw new Error(`cargo ${args.join(' ')} failed`)
}

/** Starts a testserver; resolves to { base, port, stop() }. */
export async function startServer() {
  if (!existsSync(TESTSERVER)) cargoBuild('testserver')
  const proc = spawn(TESTSERVER, ['--exit-on-eof'], { stdio: ['pipe', 'pipe', 'inherit'] })
  const line = await new Promise((resolve, reject) => {
    let buf = ''
    proc.stdout.on('data', function onData(d) {
      buf += d
      const nl = buf.indexOf('\n')
      if (nl >= 0) {
        proc.stdout.off('data', onData)
        resolve(buf.slice(0, nl))
      }
    })
    proc.once('exit', (code) => reject(new Error(`testserver exited (${code}) before listening`)))
  })
  const m = /^listening on (http:\/\/127\.0\.0\.1:(\d+))$/.exec(line.trim())
  if (!m) throw new Error(`unexpected testserver banner: ${line}`)
  proc.stdout.resume()
  // Never keep the test process alive on the server's account.
  proc.unref()
  proc.stdout.unref?.()
  proc.stdin.unref?.()
  return {
    base: m[1],
    port: Number(m[2]),
    stop() {
      proc.stdin.end()
      proc.kill()
    },
  }
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
