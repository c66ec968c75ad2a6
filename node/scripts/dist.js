#!/usr/bin/env node
// `make -C node dist`: the npm packages of a release, in the napi-rs layout, packed with
// `npm pack` from staging folders (the source package.json stays as it is):
//   eventsource-native-TRIPLE  the prebuilt addon for one platform (from npm/TRIPLE/)
//   eventsource-native         the JS package; each platform package of npm/ is an optional
//                              dependency (npm installs the one that matches os/cpu/libc),
//                              and rust/ (a trimmed cargo workspace) lets its install script
//                              build the addon from source where none matches
// Usage: node scripts/dist.js --addon FILE --triple linux-x64-gnu --out DIR [--stage DIR]
'use strict'
const fs = require('node:fs')
const path = require('node:path')
const { spawnSync } = require('node:child_process')

const pkgDir = path.resolve(__dirname, '..')
const repo = path.resolve(pkgDir, '..')

function arg(name, fallback) {
  const i = process.argv.indexOf(name)
  if (i < 0 || !process.argv[i + 1]) {
    if (fallback !== undefined) return fallback
    throw new Error(`dist.js: ${name} is required (see the usage at the top of the file)`)
  }
  return process.argv[i + 1]
}

const addon = path.resolve(arg('--addon'))
const triple = arg('--triple')
const out = path.resolve(arg('--out'))
const stage = path.resolve(arg('--stage', path.join(repo, 'target', 'npm-stage')))
const readJson = (f) => JSON.parse(fs.readFileSync(f, 'utf8'))
const writeJson = (f, v) => fs.writeFileSync(f, `${JSON.stringify(v, null, 2)}\n`)

const main = readJson(path.join(pkgDir, 'package.json'))
const platforms = fs.readdirSync(path.join(pkgDir, 'npm')).sort()
if (!platforms.includes(triple)) throw new Error(`dist.js: no npm/${triple}/ (platforms: ${platforms.join(', ')})`)
if (!fs.existsSync(addon)) throw new Error(`dist.js: no addon at ${addon}`)
fs.mkdirSync(out, { recursive: true })

function pack(dir) {
  const r = spawnSync('npm', ['pack', dir, '--pack-destination', out, '--ignore-scripts', '--json'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  if (r.status !== 0) throw new Error(`npm pack ${dir} failed (exit ${r.status})`)
  const [info] = JSON.parse(r.stdout)
  console.error(`wrote ${path.join(out, info.filename)} (${info.entryCount} files, ${info.size} bytes)`)
}

// The platform package: its manifest from npm/TRIPLE, the version of the main package.
const platDir = path.join(stage, triple)
fs.rmSync(platDir, { recursive: true, force: true })
fs.mkdirSync(platDir, { recursive: true })
const plat = readJson(path.join(pkgDir, 'npm', triple, 'package.json'))
plat.version = main.version
writeJson(path.join(platDir, 'package.json'), plat)
fs.copyFileSync(path.join(pkgDir, 'npm', triple, 'README.md'), path.join(platDir, 'README.md'))
fs.copyFileSync(addon, path.join(platDir, plat.main))

// The main package: its files, and a manifest with the optional dependencies and without what
// only a checkout needs (dev dependencies, the pack and build scripts).
const mainDir = path.join(stage, main.name)
fs.rmSync(mainDir, { recursive: true, force: true })
fs.mkdirSync(mainDir, { recursive: true })
for (const f of main.files) {
  if (f === 'rust/') continue
  fs.mkdirSync(path.dirname(path.join(mainDir, f)), { recursive: true })
  fs.cpSync(path.join(pkgDir, f), path.join(mainDir, f), { recursive: true })
}
const manifest = { ...main, scripts: { install: main.scripts.install } }
delete manifest.devDependencies
manifest.optionalDependencies = Object.fromEntries(
  platforms.map((t) => [readJson(path.join(pkgDir, 'npm', t, 'package.json')).name, main.version]),
)
writeJson(path.join(mainDir, 'package.json'), manifest)
const prep = spawnSync(process.execPath, [path.join(__dirname, 'prepack.js'), '--out', path.join(mainDir, 'rust')], {
  stdio: 'inherit',
})
if (prep.status !== 0) throw new Error('prepack.js failed')

pack(platDir)
pack(mainDir)
