// Node benchmark: eventsource-native vs the `eventsource` package (v5, the drop-in peer) and
// `eventsource-client`, on one loopback stream: ASCII workloads from the release testserver
// (/stream), and a text corpus from a node:http server (words outside Latin-1, 64 KiB writes).
//
//     make -C node bench                      # builds, installs the peers, prints the table
//     node bench/node/bench.mjs [--json rows.json] [--reps 5] [--scale 0.25]
//     node bench/node/bench.mjs --clients eventsource-native,js-ceiling --module /other/build/index.mjs
//
// `--module` loads eventsource-native from another checkout or build (to compare two versions
// of the package, run once with each); `--clients` runs only the named clients, `--workloads`
// only the named workloads (small, json, small-text, json-text); `--scale` multiplies the event
// counts; `--json` writes the rows for bench/report (which owns bench/RESULTS.md).
//
// Each run is a fresh child process that opens one source, handles COUNT events (the listener
// reads e.data.length so every string is materialized) and reports wall time and process CPU
// (user + system, all threads: the Rust runtime's included). The median of the runs is kept.
// MB/s counts event data bytes (the `data:` payloads, as UTF-8).
//
// The text corpus (`--serve`, a node:http server in a process of its own): JSON whose words
// include `ünïcødé` and `日本語`, so that every batch holds text outside Latin-1 (V8 two-byte
// strings), written in 64 KiB writes (chunked). The body is built before the server says it
// listens, so the server only writes during a run.
import { spawn } from 'node:child_process'
import { writeFileSync, existsSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const ROOT = path.resolve(HERE, '..', '..')

// ---------------------------------------------------------------------------------------------
// Child: one client, one stream.

async function child([client, url, countStr, modulePath]) {
  const count = Number(countStr)
  let n = 0
  let bytes = 0
  let t0
  let c0
  const done = () => {
    const wall = (performance.now() - t0) / 1000
    const cpu = process.cpuUsage(c0)
    process.stdout.write(JSON.stringify({ n, bytes, wall, cpu: (cpu.user + cpu.system) / 1e6 }) + '\n')
    process.exit(0)
  }
  const fail = (msg) => {
    process.stderr.write(`${client}: ${msg} after ${n} events\n`)
    process.exit(1)
  }
  if (client === 'eventsource-native' || client === 'eventsource') {
    // Both are drop-ins for the browser class: the same code drives them.
    const module = client === 'eventsource' ? 'eventsource' : modulePath
    const { EventSource } = await import(module)
    t0 = performance.now()
    c0 = process.cpuUsage()
    const es = new EventSource(url)
    es.addEventListener('message', (e) => {
      bytes += e.data.length
      if (++n === count) done()
    })
    es.onerror = (e) => fail(`error ${e.message}`)
  } else if (client === 'eventsource-client') {
    const { createEventSource } = await import('eventsource-client')
    t0 = performance.now()
    c0 = process.cpuUsage()
    createEventSource({
      url,
      onMessage: (m) => {
        bytes += m.data.length
        if (++n === count) done()
      },
    })
  } else if (client === 'js-ceiling') {
    // No network: create and dispatch `count` MessageEvents of the same data on an EventTarget
    // (`url` is the payload size, or `text:KIND` for 64 events of the text corpus).
    const rnd = xorshift()
    const data = Array.from({ length: 64 }, (_, i) =>
      url.startsWith('text:') ? corpusEvent(url.slice(5), i + 1, rnd) : `{"seq":${i},"payload":"${'x'.repeat(Number(url))}"}`,
    )
    const target = new EventTarget()
    target.addEventListener('message', (e) => {
      bytes += e.data.length
      ++n
    })
    t0 = performance.now()
    c0 = process.cpuUsage()
    for (let i = 0; i < count; i++) {
      target.dispatchEvent(new MessageEvent('message', { data: data[i & 63], origin: 'http://x', lastEventId: '' }))
    }
    done()
  } else {
    fail(`unknown client ${client}`)
  }
}

// ---------------------------------------------------------------------------------------------
// The text corpus and its server.

// Latin-1 words with accents, and words outside Latin-1 (two-byte in V8).
const WORDS = ['stream', 'ünïcødé', 'event', '日本語', 'token', 'naïve', 'delta', 'content', 'übermäßig', 'message', 'café', 'id']

// Event data of the text workloads: `small` ~28 bytes, `json` ~1 KB (UTF-8), deterministic.
function corpusEvent(kind, i, rnd) {
  if (kind === 'small') return `{"seq":${i},"w":"${WORDS[i % WORDS.length]}"}`
  const head = `{"seq":${i},"user":"user-${i % 977}","lang":"${i % 2 ? 'ja' : 'de'}","text":"`
  let text = ''
  let bytes = Buffer.byteLength(head) + 2
  while (bytes < 1000) {
    const w = WORDS[rnd() % WORDS.length]
    text += text === '' ? w : ` ${w}`
    bytes += Buffer.byteLength(w) + 1
  }
  return `${head}${text}"}`
}

function xorshift() {
  let s = 0x9e3779b9
  return () => {
    s ^= s << 13
    s ^= s >>> 17
    s ^= s << 5
    return s >>> 0
  }
}

// The SSE body of `count` events and the UTF-8 bytes of their data.
function corpusBody(kind, count) {
  const rnd = xorshift()
  const parts = []
  let data = 0
  let batch = ''
  for (let i = 1; i <= count; i++) {
    const d = corpusEvent(kind, i, rnd)
    data += Buffer.byteLength(d)
    batch += `data: ${d}\n\n`
    if (batch.length > 1 << 20) {
      parts.push(Buffer.from(batch))
      batch = ''
    }
  }
  parts.push(Buffer.from(batch))
  return { body: Buffer.concat(parts), data }
}

const WRITE = 64 << 10

// `--serve small:COUNT json:COUNT`: prints `listening on URL`, then one JSON line of the data
// bytes per path, once every body is built. GET /small and /json stream their body in 64 KiB
// writes, waiting for `drain` (a fast client is never held back by anything but the socket).
async function serve(specs) {
  const http = await import('node:http')
  const bodies = new Map()
  for (const spec of specs) {
    const [kind, count] = spec.split(':')
    bodies.set(`/${kind}`, corpusBody(kind, Number(count)))
  }
  const server = http.createServer(async (req, res) => {
    const entry = bodies.get(req.url)
    if (entry === undefined) {
      res.writeHead(404).end()
      return
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
    const { body } = entry
    for (let off = 0; off < body.length && !res.destroyed; off += WRITE) {
      if (!res.write(body.subarray(off, off + WRITE))) await new Promise((r) => res.once('drain', r))
    }
    res.end()
  })
  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(`listening on http://127.0.0.1:${server.address().port}\n`)
    process.stdout.write(JSON.stringify(Object.fromEntries([...bodies].map(([p, b]) => [p, b.data]))) + '\n')
  })
  process.stdin.on('end', () => process.exit(0))
  process.stdin.resume()
}

// ---------------------------------------------------------------------------------------------
// Parent: start the servers, run the matrix, print and (optionally) write the table.

function runChild(args) {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [fileURLToPath(import.meta.url), '--child', ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
      cwd: HERE,
    })
    let out = ''
    p.stdout.on('data', (d) => (out += d))
    const timer = setTimeout(() => p.kill('SIGKILL'), 120_000)
    p.on('exit', (code) => {
      clearTimeout(timer)
      if (code === 0) resolve(JSON.parse(out))
      else reject(new Error(`${args[0]} exited ${code}`))
    })
  })
}

async function startServer() {
  const bin = path.join(ROOT, 'target', 'release', 'testserver')
  if (!existsSync(bin)) throw new Error(`${bin} is missing: cargo build --release -p testserver`)
  const p = spawn(bin, ['--exit-on-eof'], { stdio: ['pipe', 'pipe', 'inherit'] })
  const line = await new Promise((resolve) => p.stdout.once('data', (d) => resolve(String(d).split('\n')[0])))
  return { base: line.replace('listening on ', '').trim(), stop: () => p.kill() }
}

async function startNodeServer(specs) {
  const p = spawn(process.execPath, [fileURLToPath(import.meta.url), '--serve', ...specs], { stdio: ['pipe', 'pipe', 'inherit'] })
  let out = ''
  const lines = await new Promise((resolve, reject) => {
    p.stdout.on('data', (d) => {
      out += d
      const ls = out.split('\n')
      if (ls.length > 2) resolve(ls)
    })
    p.on('exit', (code) => reject(new Error(`the corpus server exited ${code}`)))
  })
  return { base: lines[0].replace('listening on ', '').trim(), dataBytes: JSON.parse(lines[1]), stop: () => p.kill() }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

async function main(argv) {
  const reps = argv.includes('--reps') ? Number(argv[argv.indexOf('--reps') + 1]) : 5
  const jsonTo = argv.includes('--json') ? argv[argv.indexOf('--json') + 1] : undefined
  const scale = argv.includes('--scale') ? Number(argv[argv.indexOf('--scale') + 1]) : 1
  const count = (n) => Math.max(1000, Math.round(n * scale))
  const modulePath = argv.includes('--module')
    ? path.resolve(argv[argv.indexOf('--module') + 1])
    : path.join(ROOT, 'node', 'index.mjs')
  const only = argv.includes('--clients') ? argv[argv.indexOf('--clients') + 1].split(',') : undefined
  const onlyWorkloads = argv.includes('--workloads') ? argv[argv.indexOf('--workloads') + 1].split(',') : undefined
  const server = await startServer()
  const text = [
    { key: 'small-text', name: 'small text (ünïcødé, 日本語)', kind: 'small', count: count(3_000_000) },
    { key: 'json-text', name: '~1 KB JSON text (ünïcødé, 日本語)', kind: 'json', count: count(120_000) },
  ]
  let corpus
  try {
    corpus = await startNodeServer(text.map((w) => `${w.kind}:${w.count}`))
  } catch (err) {
    server.stop()
    throw err
  }
  const workloads = [
    { key: 'small', name: 'small (16 B data)', size: 16, count: count(2_000_000) },
    { key: 'json', name: '1 KB JSON data', size: 1024, count: count(200_000) },
    ...text.map((w) => ({ ...w, url: `${corpus.base}/${w.kind}`, bytes: corpus.dataBytes[`/${w.kind}`] })),
  ]
  const clients = ['eventsource-native', 'eventsource', 'eventsource-client']
  const results = []
  try {
    for (const w of workloads.filter((w) => onlyWorkloads === undefined || onlyWorkloads.includes(w.key))) {
      const url = w.url ?? `${server.base}/stream?count=${w.count}&size=${w.size}`
      const all = [...clients, 'js-ceiling'].filter((c) => only === undefined || only.includes(c))
      const runs = new Map(all.map((c) => [c, []]))
      // Round-robin, so that background load hits every client alike.
      for (let i = 0; i < reps; i++) {
        for (const client of all) {
          const ceiling = w.kind === undefined ? String(Math.max(0, w.size - 24)) : `text:${w.kind}`
          const arg = client === 'js-ceiling' ? ceiling : url
          runs.get(client).push(await runChild([client, arg, String(w.count), modulePath]))
        }
      }
      for (const client of all) {
        const rs = runs.get(client)
        const wall = median(rs.map((r) => r.wall))
        const cpu = median(rs.map((r) => r.cpu))
        // Data bytes as UTF-8 (the listeners count UTF-16 units); js-ceiling: its own data.
        const bytes = client === 'js-ceiling' || w.bytes === undefined ? rs[0].bytes : w.bytes
        const row = {
          workload: w.name,
          key: w.key,
          events: w.count,
          reps,
          client,
          events_s: w.count / wall,
          mb_s: bytes / 1e6 / wall,
          cpu_s: cpu,
          cpu_per_mb: (cpu / (bytes / 1e6)) * 1000, // ms of CPU per MB
          wall,
        }
        results.push(row)
        console.error(
          `${w.name.padEnd(18)} ${client.padEnd(19)} ${(row.events_s / 1e6).toFixed(2)} M ev/s  ` +
            `${row.mb_s.toFixed(0).padStart(5)} MB/s  cpu ${row.cpu_s.toFixed(2)} s  ${row.cpu_per_mb.toFixed(1)} ms/MB`,
        )
      }
    }
  } finally {
    server.stop()
    corpus.stop()
  }
  if (jsonTo) writeFileSync(jsonTo, JSON.stringify(results, null, 1) + '\n')
  // A partial run prints its lines above and nothing else: the table compares every client.
  if ((only ?? onlyWorkloads) !== undefined) return
  process.stdout.write(render(results, reps))
}

function render(results, reps) {
  const fmt = (x, d = 2) => x.toFixed(d)
  const lines = []
  lines.push('## Node')
  lines.push('')
  lines.push(
    `\`make -C node bench\` (bench/node/bench.mjs): one loopback stream, from the release testserver ` +
      `(\`/stream?count=N&size=B\`, ASCII, 16 KiB writes) or, for the text corpus, from a node:http server in a ` +
      `process of its own (JSON whose words include \`ünïcødé\` and \`日本語\`, so every batch has text outside ` +
      `Latin-1: V8 two-byte strings; 64 KiB writes; ~28 B and ~1 KB of data per event), one fresh Node ${process.version} process per run, ` +
      `median of ${reps} runs, round-robin; ${os.cpus().length} cores; load average ${os.loadavg()[0].toFixed(1)} at the end (${os.cpus()[0]?.model?.trim() ?? 'unknown CPU'}). ` +
      'Every client counts events in its listener and reads `data.length`. CPU = user + system of the ' +
      'whole process (all threads, the Rust runtime included); MB = event data bytes (UTF-8). ' +
      '`js-ceiling` is no network at all: `new MessageEvent` + `dispatchEvent` in a loop, the most any ' +
      'EventTarget-based client can reach.',
  )
  lines.push('')
  for (const workload of [...new Set(results.map((r) => r.workload))]) {
    const rows = results.filter((r) => r.workload === workload)
    const ours = rows.find((r) => r.client === 'eventsource-native')
    lines.push(`### ${workload}`)
    lines.push('')
    lines.push('| client | events/s | MB/s | CPU s | CPU ms/MB | vs eventsource-native (events/s) |')
    lines.push('|---|---:|---:|---:|---:|---:|')
    for (const r of rows) {
      const ratio = r === ours ? '1.00×' : `${fmt(ours.events_s / r.events_s)}× faster`
      lines.push(
        `| ${r.client}${r.client === 'js-ceiling' ? ' (no I/O)' : ''} | ${fmt(r.events_s / 1e6)} M | ${fmt(r.mb_s, 0)} | ` +
          `${fmt(r.cpu_s)} | ${fmt(r.cpu_per_mb, 1)} | ${r.client === 'js-ceiling' ? `ours = ${fmt((100 * ours.events_s) / r.events_s, 0)}% of it` : ratio} |`,
      )
    }
    const es5 = rows.find((r) => r.client === 'eventsource')
    const esc = rows.find((r) => r.client === 'eventsource-client')
    lines.push('')
    lines.push(
      `Ratios: vs \`eventsource\` v5: ${fmt(ours.events_s / es5.events_s)}× events/s, ` +
        `${fmt(ours.mb_s / es5.mb_s)}× MB/s, ${fmt(ours.cpu_per_mb / es5.cpu_per_mb)}× its CPU per MB ` +
        `(target ≥ 2×, ≥ 2×, ≤ 0.5×); vs \`eventsource-client\`: ${fmt(ours.events_s / esc.events_s)}× events/s ` +
        `(target > 1×).`,
    )
    lines.push('')
  }
  return lines.join('\n') + '\n'
}

const argv = process.argv.slice(2)
if (argv[0] === '--child') await child(argv.slice(1))
else if (argv[0] === '--serve') await serve(argv.slice(1))
else await main(argv)
