// One scale or latency measurement of the Node face, in a process of its own.
//
// Run by bench/scale.py (`make -C node scale`), which starts the testserver and runs this once
// per measurement: `node --expose-gc scale.mjs --one CLIENT HTTP TASK N BASE SERVER_PID K=V...`.
// The tasks (`scale`, `rate`, `broadcast`) and the records (schema 1, `REC\t{json}` lines on
// stdout) are those of the Rust face's bench/src/bin/scale.rs; bench/README.md describes both.
//
// Every client runs on Node's event loop, with one shared listener function for every source:
// - `ours-default`, `ours-lean`: eventsource-native (node/index.mjs) on either transport (h2c with
//   `http2PriorKnowledge` on the default one);
// - `eventsource`: the npm package (v5, on Node's built-in fetch);
// - `undici`: undici's `EventSource` (on the undici package's own fetch and global Agent, no
//   connection limit).
// The listener reads `process.hrtime.bigint()` (CLOCK_MONOTONIC, the server's stamp clock)
// first thing. Before each RSS reading the child runs gc() (hence --expose-gc).
import { readFileSync, readdirSync } from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const ROOT = path.resolve(HERE, '..', '..')
const STALL_MS = 10_000 // without progress, a wait gives up
const STALL_FIRST_OPEN_MS = 60_000 // for the first of N opens (as in scale.rs)

// ---------------------------------------------------------------------------------------------
// What every client's listener does: count, and when asked, the latency of the event.

// A count that the loop can wait for, woken by the increment that reaches the target.
class Counter {
  n = 0
  want = 0
  wake = null

  add() {
    if (++this.n === this.want && this.wake) this.wake()
  }

  // Until the count is at least `want`; false once it has not moved for `stall` ms.
  async waitProgress(want, stall = STALL_MS) {
    let last = this.n
    let since = performance.now()
    while (this.n < want) {
      this.want = want
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, 250)
        this.wake = () => {
          clearTimeout(timer)
          resolve()
        }
      })
      this.wake = null
      if (this.n !== last) {
        last = this.n
        since = performance.now()
      } else if (performance.now() - since >= stall) {
        return false
      }
    }
    return true
  }
}

const OPENED = new Counter()
const MESSAGES = new Counter()
let errors = 0
let firstError = ''
let record = false
const samples = []

const onOpen = () => OPENED.add()

function onMessage(e) {
  if (record) {
    const now = process.hrtime.bigint()
    const d = e.data // {"seq":S,"t":T}
    samples.push(Number(now - BigInt(d.slice(d.lastIndexOf(':') + 1, -1))))
  }
  MESSAGES.add()
}

function onError(e) {
  if (++errors === 1) firstError = String(e?.message || e?.error?.message || e?.type || e)
}

// ---------------------------------------------------------------------------------------------
// The clients.

function packageVersion(name) {
  return JSON.parse(readFileSync(path.join(HERE, 'node_modules', name, 'package.json'), 'utf8')).version
}

// The version Cargo.lock resolved for `name` (`name@MAJOR.MINOR` picks among several).
function cargoLockVersion(spec) {
  const [name, prefix = ''] = spec.split('@')
  const text = readFileSync(path.join(ROOT, 'Cargo.lock'), 'utf8')
  const at = text.indexOf(`name = "${name}"\nversion = "${prefix}`)
  return at < 0 ? '?' : text.slice(at).split('\n')[1].split('"')[1]
}

async function driver(key, h2) {
  let EventSource
  let init
  let info
  if (key === 'ours-default' || key === 'ours-lean') {
    ;({ EventSource } = await import(path.join(ROOT, 'node', 'index.mjs')))
    const lean = key === 'ours-lean'
    if (lean && h2) throw new Error('the lean transport is HTTP/1.1 only')
    init = { transport: lean ? 'lean' : 'default', http2PriorKnowledge: h2 }
    const core = cargoLockVersion('eventsource-core')
    info = {
      client: 'eventsource-core',
      client_version: core,
      transport: lean ? 'lean' : 'reqwest',
      transport_version: lean ? core : cargoLockVersion('reqwest@0.13'),
    }
  } else if (key === 'eventsource' && !h2) {
    ;({ EventSource } = await import('eventsource'))
    info = {
      client: 'eventsource',
      client_version: packageVersion('eventsource'),
      transport: 'undici',
      transport_version: process.versions.undici,
    }
  } else if (key === 'undici' && !h2) {
    ;({ EventSource } = await import('undici'))
    const v = packageVersion('undici')
    info = { client: 'undici', client_version: v, transport: 'undici', transport_version: v }
  } else {
    throw new Error(`unknown client ${key} (or no HTTP/2 for it)`)
  }
  const sources = []
  return {
    info,
    open(url) {
      const es = init ? new EventSource(url, init) : new EventSource(url)
      es.onopen = onOpen
      es.onmessage = onMessage
      es.onerror = onError
      sources.push(es)
    },
  }
}

// ---------------------------------------------------------------------------------------------
// Measuring.

const fds = () => readdirSync('/proc/self/fd').length
const rssKib = () => process.memoryUsage.rss() / 1024

function settled() {
  globalThis.gc?.()
  return rssKib()
}

function cpuSeconds() {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1e6
}

// Another process's CPU: the sum of its threads' schedstat run times.
function serverCpuSeconds(pid) {
  let ns = 0
  try {
    for (const t of readdirSync(`/proc/${pid}/task`)) {
      try {
        ns += Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0])
      } catch {}
    }
  } catch {}
  return ns / 1e9
}

// One request to the testserver over a connection of its own; its JSON answer.
function control(base, method, p) {
  const [host, port] = base.replace('http://', '').split(':')
  return new Promise((resolve, reject) => {
    const chunks = []
    const s = net.connect(Number(port), host, () => {
      s.write(`${method} ${p} HTTP/1.1\r\nHost: ${host}:${port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`)
    })
    s.on('data', (c) => chunks.push(c))
    s.on('error', reject)
    s.on('end', () => {
      const text = Buffer.concat(chunks).toString()
      if (!text.startsWith('HTTP/1.1 200')) return reject(new Error(`${method} ${p}: ${text}`))
      resolve(JSON.parse(text.slice(text.indexOf('{'), text.lastIndexOf('}') + 1)))
    })
  })
}

// Nearest-rank percentiles in µs of latencies in ns.
function latencyFields(ns) {
  ns = Float64Array.from(ns).sort()
  const n = ns.length
  const at = (q) => (n ? ns[Math.min(Math.max(Math.ceil(q * n), 1), n) - 1] / 1e3 : null)
  let sum = 0
  for (const v of ns) sum += v
  return {
    samples: n,
    p50_us: at(0.5),
    p99_us: at(0.99),
    p999_us: at(0.999),
    max_us: at(1),
    mean_us: sum / Math.max(n, 1) / 1e3,
  }
}

class One {
  constructor(argv, d) {
    const [client, http, task, n, base, pid, ...rest] = argv
    Object.assign(this, { client, http, task, n: Number(n), base, serverPid: Number(pid), d })
    this.params = Object.fromEntries(rest.map((kv) => kv.split('=')))
    this.run = [process.execPath, ...process.execArgv, fileURLToPath(import.meta.url), '--one', ...argv].join(' ')
  }

  param(name) {
    return Number(this.params[name])
  }

  url(p) {
    return this.base + p
  }

  record(metric, value, unit, extra = {}) {
    return {
      schema: 1,
      face: 'node',
      ...this.d.info,
      key: this.client,
      http: this.http,
      tls: false,
      metric,
      n: this.n,
      value,
      unit,
      ok: true,
      ...extra,
    }
  }

  failed(metric, why) {
    return this.record(metric, null, '', { ok: false, error: why })
  }

  emit(r) {
    Object.assign(r, { run: this.run, time: Math.floor(Date.now() / 1000), errors })
    if (firstError) r.first_error = firstError
    process.stdout.write(`REC\t${JSON.stringify(r)}\n`)
  }

  // A first source on the plain /stream, so that the client and its pool exist before the
  // "before" figures are taken.
  async warmUp() {
    this.d.open(this.url('/stream?count=1&hold=1'))
    if (!((await OPENED.waitProgress(1, 20_000)) && (await MESSAGES.waitProgress(1, 20_000)))) {
      throw new Error('the warm-up source got no event')
    }
    OPENED.n = 0
    MESSAGES.n = 0
  }

  async openAll() {
    const url = this.url('/load/stream')
    const t0 = performance.now()
    for (let i = 0; i < this.n; i++) this.d.open(url)
    if (!((await OPENED.waitProgress(1, STALL_FIRST_OPEN_MS)) && (await OPENED.waitProgress(this.n)))) return null
    return (performance.now() - t0) / 1000
  }
}

async function scale(one) {
  const n = one.n
  const pause = one.param('settle_ms')
  const rssBefore = settled()
  const fdsBefore = fds()
  const errorsBefore = errors
  let secs = await one.openAll()
  if (secs === null) return one.emit(one.failed('open_ms', `${OPENED.n} of ${n} sources opened`))
  one.emit(one.record('open_ms', secs * 1e3, 'ms', { errors_while_opening: errors - errorsBefore }))

  await sleep(pause)
  const rssOpen = settled()
  const stats = await control(one.base, 'GET', '/load/stats')
  const { http1, http2 } = stats.connections
  one.emit(
    one.record('connections', http1 + http2, 'connections', {
      http1_connections: http1,
      http2_connections: http2,
      server_open_streams: stats.open_streams,
    }),
  )

  // Every source gets one event, then idles: the memory of a source that has seen traffic.
  await control(one.base, 'POST', '/load/broadcast?n=1')
  if (!(await MESSAGES.waitProgress(n))) {
    return one.emit(one.failed('idle_kib_per_source', `${MESSAGES.n} of ${n} sources got the first broadcast`))
  }
  await sleep(pause)
  const rssIdle = settled()
  one.emit(
    one.record('idle_kib_per_source', (rssIdle - rssBefore) / n, 'KiB', {
      rss_before_kib: rssBefore,
      rss_open_kib: rssOpen,
      rss_idle_kib: rssIdle,
      open_kib_per_source: (rssOpen - rssBefore) / n,
      fds_per_source: (fds() - fdsBefore) / n,
    }),
  )

  // Write-paced broadcasts: one event per write, as fast as every stream takes them.
  const rounds = one.param('rounds')
  const total = n * rounds
  MESSAGES.n = 0
  samples.length = 0
  record = true
  const cpu0 = cpuSeconds()
  const server0 = serverCpuSeconds(one.serverPid)
  const t0 = performance.now()
  await control(one.base, 'POST', `/load/broadcast?n=${rounds}&paced=1`)
  const done = await MESSAGES.waitProgress(total)
  secs = (performance.now() - t0) / 1000
  const cpu = cpuSeconds() - cpu0
  const serverCpu = serverCpuSeconds(one.serverPid) - server0
  record = false
  if (!done) {
    return one.emit(one.failed('broadcast_events_per_s', `${MESSAGES.n} of ${total} broadcast events arrived`))
  }
  const per = (s) => (s / total) * 1e6
  one.emit(
    one.record('broadcast_events_per_s', total / secs, 'events/s', {
      events: total,
      rounds,
      secs,
      cpu_us_per_event: per(cpu),
      server_cpu_us_per_event: per(serverCpu),
      ...latencyFields(samples),
    }),
  )
  one.emit(one.record('cpu_us_per_event', per(cpu), 'us', { server_cpu_us_per_event: per(serverCpu), events: total }))
}

async function latencyRate(one) {
  const [hz, count, skip] = ['hz', 'count', 'skip'].map((k) => one.param(k))
  record = true
  one.d.open(one.url(`/load/rate?hz=${hz}&count=${count}`))
  if (!(await MESSAGES.waitProgress(count))) {
    return one.emit(one.failed('latency_rate_us', `${MESSAGES.n} of ${count} events arrived`))
  }
  const lat = latencyFields(samples.slice(skip))
  one.emit(one.record('latency_rate_us', lat.p99_us, 'us', { hz, events: count, skipped: skip, ...lat }))
}

async function latencyBroadcast(one) {
  const n = one.n
  const [rounds, everyUs] = ['rounds', 'every_us'].map((k) => one.param(k))
  if ((await one.openAll()) === null) {
    return one.emit(one.failed('latency_broadcast_us', `${OPENED.n} of ${n} sources opened`))
  }
  await control(one.base, 'POST', '/load/broadcast?n=1')
  if (!(await MESSAGES.waitProgress(n))) {
    return one.emit(one.failed('latency_broadcast_us', 'the warm-up broadcast did not arrive'))
  }
  MESSAGES.n = 0
  samples.length = 0
  record = true
  await control(one.base, 'POST', `/load/broadcast?n=${rounds}&every_us=${everyUs}`)
  if (!(await MESSAGES.waitProgress(n * rounds))) {
    return one.emit(one.failed('latency_broadcast_us', `${MESSAGES.n} of ${n * rounds} events arrived`))
  }
  const lat = latencyFields(samples)
  one.emit(one.record('latency_broadcast_us', lat.p99_us, 'us', { rounds, every_us: everyUs, ...lat }))
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const TASKS = { scale, rate: latencyRate, broadcast: latencyBroadcast }

const argv = process.argv.slice(2)
if (argv[0] !== '--one' || argv.length < 7 || !TASKS[argv[3]]) {
  process.stderr.write('usage: node --expose-gc scale.mjs --one CLIENT HTTP TASK N BASE SERVER_PID K=V...\n')
  process.exit(2)
}
const d = await driver(argv[1], argv[2] === '2')
const one = new One(argv.slice(1), d)
await one.warmUp()
await TASKS[one.task](one)
// Exit without tearing down thousands of sources: the kernel closes the sockets.
process.exit(0)
