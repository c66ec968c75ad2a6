// Packaging: the TypeScript example compiles against index.d.ts, and the tarball from
// `npm pack` installs into a fresh project (building the addon from source with cargo, as a
// user's machine would) and works from both require() and import.
// The install test builds the addon from scratch (~80-100 s on 2 cores): set
// EVENTSOURCE_PACK_TEST=0 to skip it.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync, readdirSync, existsSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { NODE_DIR, ROOT, startServer, token, script } from './helpers.mjs'

let server
before(async () => {
  server = await startServer()
})
after(() => server.stop())

const TSC = path.join(NODE_DIR, 'node_modules', '.bin', 'tsc')

test('TypeScript: examples/node/hello.ts compiles against index.d.ts (tsc --noEmit)', () => {
  const r = spawnSync(TSC, ['-p', path.join(ROOT, 'examples', 'node', 'tsconfig.json')], { encoding: 'utf8' })
  assert.equal(r.status, 0, r.stdout + r.stderr)
})

test('TypeScript: the declarations reject wrong use', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'es-ts-'))
  try {
    writeFileSync(
      path.join(dir, 'bad.ts'),
      `import { EventSource, ErrorEvent } from 'eventsource-native'
const es = new EventSource('http://x/', { retry: 'soon' })
const n: number = es.url
es.onerror = (e) => { const s: string = e.code }
new EventSource('http://x/', { transport: 'fast' })
new EventSource('http://x/', { fetch: globalThis.fetch })
new ErrorEvent('error', { status: '500' })
async function f() { for await (const e of es) { const id: number = e.lastEventId } }
es.addEventListener('error', (e) => { const b: string = e.body })
const h: Headers = es.responseHeaders
`,
    )
    writeFileSync(
      path.join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          noEmit: true,
          module: 'nodenext',
          moduleResolution: 'nodenext',
          types: ['node'],
          typeRoots: [path.join(NODE_DIR, 'node_modules', '@types')],
          paths: { 'eventsource-native': [path.join(NODE_DIR, 'index.d.ts')] },
        },
        files: ['bad.ts'],
      }),
    )
    const r = spawnSync(TSC, ['-p', path.join(dir, 'tsconfig.json')], { encoding: 'utf8' })
    assert.notEqual(r.status, 0)
    const errors = r.stdout.split('\n').filter((l) => /error TS/.test(l))
    assert.equal(errors.length, 9, r.stdout)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

const skipPack = process.env.EVENTSOURCE_PACK_TEST === '0' && 'EVENTSOURCE_PACK_TEST=0'

test('npm pack, then npm install of the tarball in a fresh project builds and works', { skip: skipPack, timeout: 900_000 }, () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'es-pack-'))
  try {
    const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
    const pack = spawnSync(npm, ['pack', NODE_DIR, '--pack-destination', dir], { encoding: 'utf8' })
    assert.equal(pack.status, 0, pack.stderr)
    const tgz = readdirSync(dir).find((f) => f.endsWith('.tgz'))
    assert.ok(tgz, 'no tarball')
    assert.ok(!existsSync(path.join(NODE_DIR, 'rust')), 'postpack did not clean rust/')
    const proj = path.join(dir, 'proj')
    spawnSync('mkdir', [proj])
    writeFileSync(path.join(proj, 'package.json'), JSON.stringify({ name: 'proj', version: '1.0.0', private: true }))
    const install = spawnSync(npm, ['install', path.join(dir, tgz), '--no-audit', '--no-fund', '--foreground-scripts'], {
      cwd: proj,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    assert.equal(install.status, 0, install.stdout.slice(-3000) + install.stderr.slice(-3000))
    const pkgDir = path.join(proj, 'node_modules', 'eventsource-native')
    assert.ok(existsSync(path.join(pkgDir, 'eventsource-native.node')))
    assert.ok(existsSync(path.join(pkgDir, 'index.d.ts')))

    // One token per program: a /script token serves its body to the first connection only.
    const url1 = script(server.base, token('pack-cjs'), { c1: 'data: from the tarball\n\n', hold1: 1 })
    const url2 = script(server.base, token('pack-esm'), { c1: 'data: from the tarball\n\n', hold1: 1 })
    const cjs = `const { EventSource } = require('eventsource-native');
      const es = new EventSource(${JSON.stringify(url1)});
      es.onmessage = (e) => { console.log(e.data); es.close() }
      es.onerror = (e) => { console.error('error event:', e.message, es.readyState) }`
    const esm = `import { EventSource } from 'eventsource-native';
      import Default from 'eventsource-native';
      if (Default !== EventSource) throw new Error('default export differs');
      const es = new EventSource(${JSON.stringify(url2)});
      es.onmessage = (e) => { console.log(e.data); es.close() }
      es.onerror = (e) => { console.error('error event:', e.message, es.readyState) }`
    for (const [flag, code] of [
      ['--eval', cjs],
      ['--input-type=module', esm],
    ]) {
      const args = flag === '--eval' ? ['-e', code] : [flag, '-e', code]
      const r = spawnSync(process.execPath, args, { cwd: proj, encoding: 'utf8', timeout: 20_000 })
      assert.equal(r.status, 0, r.stderr)
      assert.equal(r.stdout, 'from the tarball\n', `${flag}: stderr: ${r.stderr}`)
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
