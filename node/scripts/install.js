#!/usr/bin/env node
// The package's install script. Where a prebuilt addon matches this machine (the optional
// dependency eventsource-native-TRIPLE, e.g. eventsource-native-linux-x64-gnu) it only checks
// that the addon loads, and is done. Where none matches (another platform, `--omit=optional`,
// a checkout: `npm install /path/to/node`), it builds the addon from source: plain
// `cargo build --release` in a temporary target dir (so the package folder is not left with
// hundreds of MB of build artifacts), then the library is copied to eventsource-native.node.
// That takes minutes, so it says so and shows progress: on the terminal (/dev/tty) when there
// is one, since npm hides the output of install scripts that succeed, else on stderr.
//
// Environment: EVENTSOURCE_NATIVE_SKIP_BUILD=1 skips the build (you provide the .node file);
// CARGO overrides the cargo command.
'use strict'
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawn, spawnSync } = require('node:child_process')

const pkg = path.resolve(__dirname, '..')
const out = path.join(pkg, 'eventsource-native.node')

let tty = 2
try {
  tty = fs.openSync('/dev/tty', 'w')
} catch {
  // No terminal (CI, a service): stderr, which npm shows with --foreground-scripts or on failure.
}
function say(msg) {
  const line = `eventsource-native: ${msg}\n`
  // On the terminal, first clear the line npm's spinner is drawn on.
  fs.writeSync(tty, tty === 2 ? line : `\r\x1b[K${line}`)
  if (tty !== 2 && !process.stderr.isTTY) fs.writeSync(2, line)
}
function die(msg) {
  say(msg)
  process.exit(1)
}

// The same name as loadNative() in index.js computes.
function platformTriple() {
  const { platform, arch } = process
  if (platform === 'linux') {
    // musl or glibc: /usr/bin/ldd says which (a glibc script, or musl's loader), else the
    // process report (slower: ~40 ms).
    let glibc
    try {
      glibc = !fs.readFileSync('/usr/bin/ldd', 'latin1').includes('musl')
    } catch {
      glibc = Boolean(process.report?.getReport?.().header?.glibcVersionRuntime)
    }
    return `linux-${arch}-${glibc ? 'gnu' : 'musl'}`
  }
  if (platform === 'win32') return `win32-${arch}-msvc`
  return `${platform}-${arch}`
}

if (process.env.EVENTSOURCE_NATIVE_SKIP_BUILD) {
  say('EVENTSOURCE_NATIVE_SKIP_BUILD is set: not building the addon')
  process.exit(0)
}

const triple = platformTriple()
const prebuilt = `eventsource-native-${triple}`
let why
try {
  const file = require.resolve(prebuilt, { paths: [pkg] })
  require(file)
  console.error(`eventsource-native: using the prebuilt addon ${file}`)
  process.exit(0)
} catch (err) {
  why =
    err.code === 'MODULE_NOT_FOUND' && err.message.includes(prebuilt)
      ? `the package ${prebuilt} is not installed`
      : `the prebuilt ${prebuilt} does not load here: ${err.message.split('\n')[0]}`
}

// A packed tarball carries a trimmed workspace in rust/; a source checkout has the workspace
// one level up.
const candidates = [path.join(pkg, 'rust', 'Cargo.toml'), path.join(pkg, '..', 'Cargo.toml')]
const manifest = candidates.find(
  (m) => fs.existsSync(m) && fs.existsSync(path.join(path.dirname(m), 'core', 'Cargo.toml')),
)
say(`no prebuilt addon for ${triple} (${why}): building it from source with Rust (cargo).`)
if (!manifest) die(`no Rust workspace found to build from (looked for ${candidates.join(' and ')})`)

const libName = {
  linux: 'libeventsource_node.so',
  darwin: 'libeventsource_node.dylib',
  win32: 'eventsource_node.dll',
}[process.platform] || 'libeventsource_node.so'

const cargo = process.env.CARGO || 'cargo'
const probe = spawnSync(cargo, ['--version'], { encoding: 'utf8' })
if (probe.error || probe.status !== 0) {
  die(`cannot run ${cargo} (${probe.error ? probe.error.message : `exit ${probe.status}`}): install Rust ≥ 1.89 from https://rustup.rs and reinstall, or use a platform with a prebuilt addon`)
}

// The number of crates to compile, for "N/M" progress (best effort: cargo tree reads Cargo.lock).
const tree = spawnSync(
  cargo,
  ['tree', '-q', '-p', 'eventsource-node', '--manifest-path', manifest, '-e', 'normal,build', '--prefix', 'none'],
  { encoding: 'utf8' },
)
const total = tree.status === 0 ? new Set(tree.stdout.split('\n').filter(Boolean).map((l) => l.split(' ').slice(0, 2).join(' '))).size : 0

const targetDir = fs.mkdtempSync(path.join(os.tmpdir(), 'eventsource-native-build-'))
const args = ['build', '--release', '-p', 'eventsource-node', '--manifest-path', manifest, '--target-dir', targetDir, '--message-format', 'json-render-diagnostics']
say(`${probe.stdout.trim()}: ${cargo} ${args.join(' ')}`)
say(`this takes a few minutes (about 2 min of CPU)${total ? `; ${total} crates to compile` : ''}`)
const env = {
  ...process.env,
  // An installed addon needs no debug info.
  CARGO_PROFILE_RELEASE_DEBUG: 'false',
  CARGO_PROFILE_RELEASE_STRIP: 'symbols',
}
const started = Date.now()
let compiled = 0
let last = ''
let stderrTail = ''
const child = spawn(cargo, args, { stdio: ['ignore', 'pipe', 'pipe'], env })
let buffered = ''
child.stdout.setEncoding('utf8')
child.stdout.on('data', (chunk) => {
  buffered += chunk
  let nl
  while ((nl = buffered.indexOf('\n')) >= 0) {
    const line = buffered.slice(0, nl)
    buffered = buffered.slice(nl + 1)
    let msg
    try {
      msg = JSON.parse(line)
    } catch {
      continue
    }
    if (msg.reason === 'compiler-artifact' && !msg.target.kind.includes('custom-build')) {
      compiled += 1
      last = msg.target.name
    }
  }
})
child.stderr.setEncoding('utf8')
child.stderr.on('data', (chunk) => {
  stderrTail = (stderrTail + chunk).slice(-8000)
})
const seconds = () => Math.round((Date.now() - started) / 1000)
// (A few crates compile twice, for build scripts and for the addon: the total is approximate.)
const ticker = setInterval(() => {
  const of = total && compiled < total ? ` of ~${total}` : ''
  const then = total && compiled >= total ? ', linking' : ''
  say(`  ${String(seconds()).padStart(4)} s: ${compiled}${of} crates compiled${last ? ` (last: ${last})` : ''}${then}`)
}, 10_000)
child.on('error', (err) => {
  clearInterval(ticker)
  fs.rmSync(targetDir, { recursive: true, force: true })
  die(`cannot run ${cargo} (${err.message})`)
})
child.on('close', (code) => {
  clearInterval(ticker)
  let error
  if (code !== 0) {
    fs.writeSync(2, stderrTail)
    error = `${cargo} build failed (exit ${code}) after ${seconds()} s; its output is above`
  } else {
    try {
      const tmp = `${out}.${process.pid}.tmp`
      fs.copyFileSync(path.join(targetDir, 'release', libName), tmp)
      fs.renameSync(tmp, out)
    } catch (err) {
      error = `cannot install the built addon as ${out}: ${err.message}`
    }
  }
  fs.rmSync(targetDir, { recursive: true, force: true })
  if (error) die(error)
  say(`built ${out} in ${seconds()} s`)
})
