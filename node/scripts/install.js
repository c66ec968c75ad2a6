#!/usr/bin/env node
// Builds the native addon from source at install time (`npm install /path/to/node`, or the
// tarball from `npm pack`): plain `cargo build --release` in a temporary target dir (so the
// package folder is not left with hundreds of MB of build artifacts), then the library is
// copied to eventsource-native.node. Needs Rust (cargo) on PATH.
//
// Environment: EVENTSOURCE_NATIVE_SKIP_BUILD=1 skips the build (you provide the .node file);
// CARGO overrides the cargo command.
'use strict'
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawnSync } = require('node:child_process')

const pkg = path.resolve(__dirname, '..')
const out = path.join(pkg, 'eventsource-native.node')

function die(msg) {
  console.error(`eventsource-native: ${msg}`)
  process.exit(1)
}

if (process.env.EVENTSOURCE_NATIVE_SKIP_BUILD) {
  console.error('eventsource-native: EVENTSOURCE_NATIVE_SKIP_BUILD is set: not building the addon')
  process.exit(0)
}

// A packed tarball carries a trimmed workspace in rust/; a source checkout has the workspace
// one level up.
const candidates = [path.join(pkg, 'rust', 'Cargo.toml'), path.join(pkg, '..', 'Cargo.toml')]
const manifest = candidates.find(
  (m) => fs.existsSync(m) && fs.existsSync(path.join(path.dirname(m), 'core', 'Cargo.toml')),
)
if (!manifest) die(`no Rust workspace found (looked for ${candidates.join(' and ')})`)

const libName = {
  linux: 'libeventsource_node.so',
  darwin: 'libeventsource_node.dylib',
  win32: 'eventsource_node.dll',
}[process.platform] || 'libeventsource_node.so'

const cargo = process.env.CARGO || 'cargo'
const targetDir = fs.mkdtempSync(path.join(os.tmpdir(), 'eventsource-native-build-'))
const args = ['build', '--release', '-p', 'eventsource-node', '--manifest-path', manifest, '--target-dir', targetDir]
console.error(`eventsource-native: building the addon: ${cargo} ${args.join(' ')}`)
const env = {
  ...process.env,
  // An installed addon needs no debug info.
  CARGO_PROFILE_RELEASE_DEBUG: 'false',
  CARGO_PROFILE_RELEASE_STRIP: 'debuginfo',
}
try {
  const r = spawnSync(cargo, args, { stdio: ['ignore', 'inherit', 'inherit'], env })
  if (r.error) die(`cannot run ${cargo} (${r.error.message}): install Rust from https://rustup.rs and retry`)
  if (r.status !== 0) die(`${cargo} build failed (exit ${r.status})`)
  const built = path.join(targetDir, 'release', libName)
  const tmp = `${out}.${process.pid}.tmp`
  fs.copyFileSync(built, tmp)
  fs.renameSync(tmp, out)
  console.error(`eventsource-native: built ${out}`)
} finally {
  fs.rmSync(targetDir, { recursive: true, force: true })
}
