// The npm install an operator makes: `npm pack`, then `npm install -g` of the tarball into an empty
// prefix (no dev dependencies, no build at install), then the `sluice` command from a directory
// of their own; and the systemd unit's ExecStart on that install.
import { execFileSync } from 'node:child_process'
import { copyFileSync, existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { send } from '../helpers/http.js'
import { startUpstream, type Upstream } from '../helpers/upstream.js'
import { ROOT, VERSION, launch, npmEnv, removeTempDirs, run, sandboxAvailable, startUnit, tempDir } from './helpers.js'

interface Packed {
  filename: string
  size: number
  unpackedSize: number
  files: { path: string }[]
}

let packed: Packed
let tarball: string
let prefix: string
let sluice: string
let upstream: Upstream

beforeAll(async () => {
  upstream = await startUpstream()
  const out = tempDir('pack')
  // --ignore-scripts: `npm test` has just built dist/, and prepack would rebuild it under the
  // feet of the tests running beside this one. .ci/run packs from a clean tree, prepack and all.
  const json = execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', out], {
    cwd: ROOT,
    env: npmEnv(),
    encoding: 'utf8',
    timeout: 60_000,
  })
  packed = (JSON.parse(json) as Packed[])[0] as Packed
  tarball = join(out, packed.filename)
  prefix = tempDir('prefix')
  // An empty prefix; dependencies from npm's cache when it has them (offline-friendly).
  execFileSync(
    'npm',
    ['install', '--global', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', tarball],
    {
      cwd: tempDir('install-cwd'),
      env: npmEnv(),
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 180_000,
    },
  )
  sluice = join(prefix, 'bin/sluice')
}, 240_000)

afterAll(async () => {
  await upstream?.close()
  removeTempDirs()
})

describe('npm pack', () => {
  it('ships the built code, the schema and the examples, not the sources or the tooling', () => {
    const files = packed.files.map((f) => f.path)
    for (const f of [
      'package.json',
      'bin/sluice.js',
      'dist/cli/main.js',
      'dist/index.js',
      'dist/index.d.ts',
      'dist/store/lua/hit.lua',
      'dist/store/lua/read.lua',
      'schema/sluice.schema.json',
      'examples/demo.yaml',
      'examples/systemd/sluice.service',
      'README.md',
      'docs/operations.md',
    ])
      expect(files, f).toContain(f)
    expect(files.filter((f) => /^(src|test|scripts|bench|release|\.ci)\//.test(f) || f.endsWith('.map'))).toEqual([])
    expect(statSync(tarball).size).toBe(packed.size)
  })

  it('builds in prepack, not at install', () => {
    const scripts = (
      JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
    ).scripts
    expect(scripts.prepack).toContain('npm run build')
    for (const hook of ['prepare', 'preinstall', 'install', 'postinstall']) expect(scripts[hook], hook).toBeUndefined()
  })
})

describe('npm install -g ./sluice-<version>.tgz', () => {
  it('installs the runtime dependencies only', () => {
    const installed = join(prefix, 'lib/node_modules/sluice')
    expect(existsSync(join(installed, 'dist/cli/main.js'))).toBe(true)
    const deps = readdirSync(join(installed, 'node_modules'))
    for (const dev of ['typescript', 'vitest', 'esbuild', 'eslint', 'postject', 'prettier'])
      expect(deps).not.toContain(dev)
    expect(deps).toContain('fastify')
  })

  it('runs `sluice --version` and `sluice check` from any directory', () => {
    const cwd = tempDir('anywhere')
    const version = run(sluice, ['--version'], { cwd })
    expect(version.stdout.trim()).toBe(VERSION)
    copyFileSync(join(ROOT, 'examples/demo.yaml'), join(cwd, 'sluice.yaml'))
    const check = run(sluice, ['check', '-c', 'sluice.yaml'], { cwd })
    expect(check.stderr).toBe('')
    expect(check.status).toBe(0)
    expect(check.stdout).toContain('sluice.yaml: OK')
  })

  it('runs `sluice start`: a request is proxied and counted', async () => {
    const cwd = tempDir('start')
    writeFileSync(join(cwd, 'sluice.yaml'), startConfig(upstream.url))
    const proxy = launch(sluice, ['start', '-c', 'sluice.yaml'], { cwd })
    let code: number | null
    try {
      const url = (await proxy.waitFor(/sluice listening on (http:\/\/[^"\s]+)/))[1] as string
      expect((await send(url, '/api/contacts/1')).status).toBe(200)
      expect((await send(url, '/api/contacts/2')).status).toBe(429)
    } finally {
      code = await proxy.stop()
    }
    expect(code, proxy.output()).toBe(0)
  })
})

describe('the systemd unit on the npm install', () => {
  it.skipIf(!sandboxAvailable && !process.env.CI)(
    'runs its ExecStart as written, under its restrictions: state file and audit trail in its StateDirectory',
    async () => {
      // No skip in CI: .ci/run runs as root, where sandbox.sh works.
      expect(sandboxAvailable, 'sandbox.sh needs root, unshare --mount and overlayfs').toBe(true)
      const { running, state } = startUnit({
        install: { kind: 'npm', packageDir: join(prefix, 'lib/node_modules/sluice'), node: process.execPath },
        config:
          startConfig(upstream.url) +
          'store: { type: memory, state: { path: /var/lib/sluice/state, every: 1s } }\n' +
          'audit: { file: /var/lib/sluice/audit.jsonl, key: "${SLUICE_AUDIT_KEY}" }\n',
        env: { SLUICE_AUDIT_KEY: 'unit-test-audit-key-0123456789' },
      })
      let code: number | null
      try {
        const url = (await running.waitFor(/sluice listening on (http:\/\/[^"\s]+)/))[1] as string
        expect((await send(url, '/api/contacts/1')).status).toBe(200)
        expect((await send(url, '/api/contacts/2')).status).toBe(429)
      } finally {
        code = await running.stop()
      }
      expect(code, running.output()).toBe(0)
      // The memory store's state file and the audit trail, both in the StateDirectory.
      expect(statSync(join(state, 'state')).uid).toBe(65534)
      const audit = readFileSync(join(state, 'audit.jsonl'), 'utf8')
      expect(audit).toContain('"type":"decision"')
      expect(statSync(join(state, 'audit.jsonl')).uid).toBe(65534)
      expect(running.output()).not.toMatch(/EROFS|EACCES|read-only file system/i)
    },
    60_000,
  )

  it.skipIf(!sandboxAvailable && !process.env.CI)(
    'cannot write anywhere else (ProtectSystem=strict): an audit file outside is refused at start, exit 1',
    async () => {
      const { running } = startUnit({
        install: { kind: 'npm', packageDir: join(prefix, 'lib/node_modules/sluice'), node: process.execPath },
        config: `${startConfig(upstream.url)}audit: { file: /usr/local/audit.jsonl }\n`,
        env: {},
      })
      expect(await running.exited).toBe(1)
      expect(running.output()).toContain('cannot open the audit file /usr/local/audit.jsonl for appending: EROFS')
    },
    60_000,
  )
})

/** One counted route, one request a minute: the second request is throttled. */
function startConfig(upstreamUrl: string): string {
  return `version: 1
listen: { host: 127.0.0.1, port: 0 }
upstream: { url: ${upstreamUrl} }
routes:
  - name: contact
    methods: [GET]
    path: /api/contacts/:id
    records: { param: id }
    limits: [ { window: 1m, requests: 1, action: throttle } ]
`
}
