#!/usr/bin/env node
// `npm pack` / `npm publish` helper: copies a trimmed cargo workspace (the core crate, this
// crate, Cargo.lock and a root Cargo.toml rewritten to those two members) into rust/, so that
// the tarball's install script can build the addon without the rest of the repository.
// `--clean` (postpack) removes it again; `--out DIR` writes the workspace to DIR instead
// (scripts/dist.js, which packs from a staging folder).
'use strict'
const fs = require('node:fs')
const path = require('node:path')

const pkg = path.resolve(__dirname, '..')
const repo = path.resolve(pkg, '..')
const outAt = process.argv.indexOf('--out')
if (outAt > 0 && !process.argv[outAt + 1]) throw new Error('prepack.js: --out needs a directory')
const dest = outAt > 0 ? path.resolve(process.argv[outAt + 1]) : path.join(pkg, 'rust')

fs.rmSync(dest, { recursive: true, force: true })
if (process.argv.includes('--clean')) process.exit(0)

// Splits a TOML file into [header, lines] sections (line-based; enough for Cargo.toml files).
function sections(text) {
  const out = [['', []]]
  for (const line of text.split('\n')) {
    const m = /^\s*(\[\[?[^\]]+\]\]?)\s*(#.*)?$/.exec(line)
    if (m) out.push([m[1], [line]])
    else out[out.length - 1][1].push(line)
  }
  return out
}

function rewriteRoot(text) {
  return sections(text)
    .map(([header, lines]) => {
      if (header === '[workspace]') {
        return ['[workspace]', 'resolver = "3"', 'members = ["core", "node"]', ''].join('\n')
      }
      if (header === '[workspace.dependencies]') {
        return lines.filter((l) => !/^\s*testserver\s*=/.test(l)).join('\n')
      }
      return lines.join('\n')
    })
    .join('\n')
}

// The core's manifest without what needs the rest of the workspace (dev-dependencies, tests,
// benches).
function rewriteCore(text) {
  return sections(text)
    .filter(([header]) => !/^\[(dev-dependencies|\[test\]|\[bench\]|\[example\])/.test(header))
    .map(([, lines]) => lines.join('\n'))
    .join('\n')
}

function copyDir(from, to) {
  fs.cpSync(from, to, { recursive: true, filter: (src) => !/(^|\/)(target|node_modules)$/.test(src) })
}

fs.mkdirSync(path.join(dest, 'core'), { recursive: true })
fs.mkdirSync(path.join(dest, 'node'), { recursive: true })
fs.writeFileSync(path.join(dest, 'Cargo.toml'), rewriteRoot(fs.readFileSync(path.join(repo, 'Cargo.toml'), 'utf8')))
fs.copyFileSync(path.join(repo, 'Cargo.lock'), path.join(dest, 'Cargo.lock'))
fs.writeFileSync(
  path.join(dest, 'core', 'Cargo.toml'),
  rewriteCore(fs.readFileSync(path.join(repo, 'core', 'Cargo.toml'), 'utf8')),
)
copyDir(path.join(repo, 'core', 'src'), path.join(dest, 'core', 'src'))
for (const f of ['build.rs', 'Cargo.toml']) fs.copyFileSync(path.join(pkg, f), path.join(dest, 'node', f))
copyDir(path.join(pkg, 'src'), path.join(dest, 'node', 'src'))
console.error(`eventsource-native: copied a trimmed cargo workspace into ${dest}`)
