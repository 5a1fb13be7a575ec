// What the install tests share: sluice run as an operator runs it (a command in a directory of
// their own, nothing of vitest's around it), examples/systemd/sluice.service read and its
// ExecStart run under its restrictions (sandbox.sh).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'

export const ROOT = join(import.meta.dirname, '../..')
export const UNIT_FILE = join(ROOT, 'examples/systemd/sluice.service')
export const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version

/** A PATH with this test's node first: npm and `#!/usr/bin/env node` run the Node under test. */
export const NODE_PATH = `${dirname(process.execPath)}:/usr/local/bin:/usr/bin:/bin`

/** An operator's environment for sluice: a PATH, a HOME, nothing of the test runner's. */
export function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  return { PATH: NODE_PATH, HOME: process.env.HOME ?? '/tmp', LANG: 'C.UTF-8', ...extra }
}

/** npm's: this machine's (its registry, proxy and CA settings), with the Node under test first. */
export function npmEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}` }
  // Not what `npm test` hands its scripts about itself (the package, the lifecycle, its prefix).
  const own = /^(npm_(package|lifecycle)_|npm_command$|npm_config_(global|prefix|local_prefix)$|VITEST|NODE_OPTIONS$)/i
  for (const key of Object.keys(env)) if (own.test(key)) delete env[key]
  return env
}

const dirs: string[] = []
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `sluice-${prefix}-`))
  dirs.push(dir)
  return dir
}
export function removeTempDirs(): void {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
}

export interface Ran {
  status: number | null
  stdout: string
  stderr: string
}

export function run(command: string, args: string[], options: { cwd: string; env?: Record<string, string> }): Ran {
  const res = spawnSync(command, args, {
    cwd: options.cwd,
    env: options.env ?? cleanEnv(),
    encoding: 'utf8',
    timeout: 60_000,
  })
  if (res.error) throw res.error
  return { status: res.status, stdout: res.stdout, stderr: res.stderr }
}

/** A long-running sluice (start, demo): what it printed so far, a wait for a line, a SIGTERM. */
export interface Running {
  child: ChildProcess
  output(): string
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpExecArray>
  /** SIGTERM, then the exit code (SIGKILL after 15 s: a hung stop fails the test, not the run). */
  stop(): Promise<number | null>
  /** The exit code, once it exits by itself. */
  exited: Promise<number | null>
}

export function launch(
  command: string,
  args: string[],
  options: { cwd: string; env?: Record<string, string> },
): Running {
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.env ?? cleanEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  const waiters = new Set<() => void>()
  const take = (chunk: Buffer) => {
    out += chunk.toString('utf8')
    for (const w of waiters) w()
  }
  child.stdout?.on('data', take)
  child.stderr?.on('data', take)
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  child.once('exit', () => {
    for (const w of waiters) w()
  })
  return {
    child,
    exited,
    output: () => out,
    waitFor(pattern, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = pattern.exec(out)
          if (m) {
            done()
            resolve(m)
          } else if (child.exitCode !== null || child.signalCode !== null) {
            done()
            reject(new Error(`exited (${child.exitCode ?? child.signalCode}) before ${pattern}:\n${out}`))
          }
        }
        const timer = setTimeout(() => {
          done()
          reject(new Error(`no ${pattern} within ${timeoutMs} ms:\n${out}`))
        }, timeoutMs)
        const done = () => {
          clearTimeout(timer)
          waiters.delete(check)
        }
        waiters.add(check)
        check()
      })
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM')
        const kill = setTimeout(() => child.kill('SIGKILL'), 15_000)
        const code = await exited
        clearTimeout(kill)
        return code
      }
      return exited
    },
  }
}

/** The directives of a unit file's [Service] section (a directive given twice keeps both). */
export function unitService(text: string): Map<string, string[]> {
  const service = new Map<string, string[]>()
  let section = ''
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue
    const header = /^\[(.+)\]$/.exec(line)
    if (header) {
      section = header[1] as string
      continue
    }
    const eq = line.indexOf('=')
    if (section !== 'Service' || eq < 0) continue
    const key = line.slice(0, eq).trim()
    service.set(key, [...(service.get(key) ?? []), line.slice(eq + 1).trim()])
  }
  return service
}

/** Whether this machine can run sandbox.sh: root, mount namespaces, overlayfs, setpriv. */
export const sandboxAvailable: boolean = (() => {
  if (process.getuid?.() !== 0) return false
  const probe = spawnSync(
    'unshare',
    [
      '--mount',
      '--propagation',
      'private',
      'sh',
      '-c',
      'd=$(mktemp -d) && mount -t tmpfs t "$d" && mkdir "$d/u" "$d/w" && ' +
        'mount -t overlay o -o "lowerdir=/usr/local,upperdir=$d/u,workdir=$d/w" /usr/local && command -v setpriv',
    ],
    { encoding: 'utf8' },
  )
  return probe.status === 0
})()

export type Install =
  /** The single executable, installed as `install -m 755 sluice /usr/local/bin/sluice`. */
  | { kind: 'exe'; file: string }
  /** An `npm install -g --prefix /usr/local` of the tarball: the package directory and its node. */
  | { kind: 'npm'; packageDir: string; node: string }

export interface UnitRun {
  running: Running
  /** The host directories shown at StateDirectory= and LogsDirectory=. */
  state: string
  logs: string
}

const SERVICE_UID = 65534 // nobody: the unit's User=sluice does not exist on a test machine

/**
 * Starts the unit's ExecStart, word for word, in sandbox.sh: the install at /usr/local, the
 * config at the path ExecStart names, the unit's writable directories and restrictions.
 */
export function startUnit(options: { install: Install; config: string; env: Record<string, string> }): UnitRun {
  const unit = unitService(readFileSync(UNIT_FILE, 'utf8'))
  const one = (key: string) => unit.get(key)?.at(-1)
  const exec = (one('ExecStart') ?? '').split(/\s+/)
  const configPath = exec[exec.indexOf('-c') + 1]
  if (!configPath?.startsWith('/etc/')) throw new Error(`ExecStart has no -c /etc/…: ${exec.join(' ')}`)
  const work = tempDir('unit')
  const config = join(work, 'sluice.yaml')
  writeFileSync(config, options.config)
  const place: string[] = [`copy ${configPath} ${config}`]
  if (options.install.kind === 'exe') place.push(`bind ${exec[0]} ${options.install.file}`)
  else {
    place.push(
      `bind /usr/local/lib/node_modules/sluice ${options.install.packageDir}`,
      `link ${exec[0]} ../lib/node_modules/sluice/bin/sluice.js`,
      `bind /usr/local/bin/node ${options.install.node}`,
    )
  }
  const state = join(work, 'state')
  const logs = join(work, 'logs')
  spawnSync('mkdir', ['-p', state, logs])
  const writable = [
    ...(unit.get('StateDirectory') ?? []).map((d) => `/var/lib/${d} ${state}`),
    ...(unit.get('LogsDirectory') ?? []).map((d) => `/var/log/${d} ${logs}`),
  ]
  const flag = (key: string, value = 'true') => (one(key) === value ? '1' : '0')
  const env = {
    PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
    SANDBOX_PLACE: place.join('\n'),
    SANDBOX_WRITABLE: writable.join('\n'),
    SANDBOX_UID: String(SERVICE_UID),
    SANDBOX_GID: String(SERVICE_UID),
    SANDBOX_ENV: Object.entries(options.env)
      .map(([k, v]) => `${k}=${v}`)
      .join('\n'),
    SANDBOX_PROTECT_SYSTEM: flag('ProtectSystem', 'strict'),
    SANDBOX_PROTECT_HOME: flag('ProtectHome'),
    SANDBOX_PRIVATE_TMP: flag('PrivateTmp'),
    SANDBOX_NO_NEW_PRIVS: flag('NoNewPrivileges'),
  }
  const running = launch('bash', [join(import.meta.dirname, 'sandbox.sh'), ...exec], { cwd: work, env })
  return { running, state, logs }
}
