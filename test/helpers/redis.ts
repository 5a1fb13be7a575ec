// Throwaway redis-server processes on free loopback ports: a single node, or a 3-master
// cluster. Started and stopped by the tests themselves, by PID.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Engine } from '../../src/engine/engine.js'
import { RedisStore } from '../../src/store/redis.js'

export const hasRedis = spawnSync('redis-server', ['--version']).status === 0
// Locally the Redis suites skip without redis-server; in CI a skip would hide a broken install.
if (!hasRedis && process.env.CI) throw new Error('redis-server is not installed: CI must install it (.ci/run)')

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo
      srv.close(() => resolve(port))
    })
  })
}

export interface RedisServer {
  port: number
  url: string
  stop(): Promise<void>
  /** Start again on the same port (after stop), e.g. to test recovery. */
  start(): Promise<void>
  /** Send a signal to the process (SIGSTOP: a hung server, SIGCONT: back). */
  signal(sig: NodeJS.Signals): void
}

async function waitForPort(port: number, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1')
      s.once('connect', () => {
        s.destroy()
        resolve(true)
      })
      s.once('error', () => resolve(false))
    })
    if (ok) return
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`redis-server on ${port} did not start`)
}

export async function startRedis(extra: string[] = [], port?: number): Promise<RedisServer> {
  const p = port ?? (await freePort())
  const dir = mkdtempSync(join(tmpdir(), 'sluice-redis-'))
  let child: ChildProcess | undefined
  const start = async () => {
    mkdirSync(dir, { recursive: true }) // stop() removes it; a restart needs it back
    const c = spawn(
      'redis-server',
      ['--port', String(p), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, ...extra],
      { stdio: 'ignore' },
    )
    child = c
    // Even if a test times out before its afterAll runs, no redis-server outlives the run.
    const reap = () => c.kill('SIGKILL')
    process.once('exit', reap)
    c.once('exit', () => process.removeListener('exit', reap))
    await waitForPort(p)
  }
  const stop = async () => {
    const c = child
    if (!c || c.exitCode !== null || c.signalCode !== null) return
    await new Promise<void>((resolve) => {
      c.once('exit', () => resolve())
      c.kill('SIGKILL')
    })
  }
  await start()
  return {
    port: p,
    url: `redis://127.0.0.1:${p}`,
    start,
    stop: async () => {
      await stop()
      rmSync(dir, { recursive: true, force: true })
    },
    signal: (sig) => void child?.kill(sig),
  }
}

export interface RedisCluster {
  urls: string[]
  stop(): Promise<void>
}

/** Three masters, no replicas, slots spread evenly. */
export async function startCluster(): Promise<RedisCluster> {
  const nodes: RedisServer[] = []
  for (let i = 0; i < 3; i++) {
    const port = await freePort()
    // nodes.conf lives in the node's own --dir, removed when it stops.
    nodes.push(
      await startRedis(
        ['--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--cluster-node-timeout', '2000'],
        port,
      ),
    )
  }
  const create = spawnSync(
    'redis-cli',
    ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'],
    { encoding: 'utf8', timeout: 20_000 },
  )
  if (create.status !== 0) throw new Error(`cluster create failed: ${create.stdout} ${create.stderr}`)
  // Wait until every node agrees the cluster is up.
  const deadline = Date.now() + 15_000
  for (const n of nodes) {
    while (Date.now() < deadline) {
      const info = spawnSync('redis-cli', ['-p', String(n.port), 'cluster', 'info'], { encoding: 'utf8' })
      if (info.stdout.includes('cluster_state:ok')) break
      await new Promise((r) => setTimeout(r, 100))
    }
  }
  return {
    urls: nodes.map((n) => n.url),
    stop: async () => {
      await Promise.all(nodes.map((n) => n.stop()))
    },
  }
}

/** A connected RedisStore on `url` (fail-closed, a small local fallback) and an engine over it. */
export async function redisEngine(
  url: string,
  keyPrefix: string,
  commandTimeoutMs = 2000,
): Promise<{ store: RedisStore; engine: Engine }> {
  const store = new RedisStore({ url, keyPrefix, commandTimeoutMs, onError: 'fail-closed', maxAccounts: 10 })
  await store.ready()
  return { store, engine: new Engine(store, { disableForMs: 60_000 }) }
}

export interface Sentinels {
  urls: string[]
  /** Kill one sentinel (by PID). */
  stop(i: number): Promise<void>
  stopAll(): Promise<void>
}

/**
 * Sentinels (redis-server --sentinel) watching `masterPort` as master `name`: quorum 2, a
 * primary is down after 1 s without an answer.
 */
export async function startSentinels(masterPort: number, name = 'sluice', count = 3): Promise<Sentinels> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-sentinel-'))
  const children: ChildProcess[] = []
  const urls: string[] = []
  for (let i = 0; i < count; i++) {
    const port = await freePort()
    const conf = join(dir, `sentinel-${port}.conf`)
    writeFileSync(
      conf,
      [
        `port ${port}`,
        'bind 127.0.0.1',
        `dir ${dir}`,
        `sentinel monitor ${name} 127.0.0.1 ${masterPort} 2`,
        `sentinel down-after-milliseconds ${name} 1000`,
        `sentinel failover-timeout ${name} 4000`,
        `sentinel parallel-syncs ${name} 1`,
        '',
      ].join('\n'),
    )
    const c = spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' })
    const reap = () => c.kill('SIGKILL')
    process.once('exit', reap)
    c.once('exit', () => process.removeListener('exit', reap))
    children.push(c)
    await waitForPort(port)
    urls.push(`redis://127.0.0.1:${port}`)
  }
  const kill = (c: ChildProcess) =>
    c.exitCode !== null || c.signalCode !== null
      ? Promise.resolve()
      : new Promise<void>((resolve) => {
          c.once('exit', () => resolve())
          c.kill('SIGKILL')
        })
  return {
    urls,
    stop: (i) => kill(children[i] as ChildProcess),
    stopAll: async () => {
      await Promise.all(children.map(kill))
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
