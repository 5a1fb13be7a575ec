// examples/systemd/sluice.service: systemd accepts it (`systemd-analyze verify`, from Debian's
// systemd package), and docs/operations.md shows that very file. Its ExecStart is run under its
// restrictions by pack.test.ts (the npm install) and exe.test.ts (the single executable).
import { spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { ROOT, UNIT_FILE, removeTempDirs, sandboxAvailable, tempDir, unitService } from './helpers.js'

const analyze = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' })
const hasAnalyze = analyze.status === 0
// Locally a machine without systemd skips; in CI a skip would hide a missing package.
if (!hasAnalyze && process.env.CI)
  throw new Error('systemd-analyze is not installed: CI must install systemd (.ci/run)')

afterAll(removeTempDirs)

describe('examples/systemd/sluice.service', () => {
  it.skipIf(!hasAnalyze)('passes systemd-analyze verify without a warning', () => {
    const unit = readFileSync(UNIT_FILE, 'utf8')
    const binary = unitService(unit).get('ExecStart')?.[0]?.split(/\s+/)[0] as string
    let res
    if (sandboxAvailable) {
      // verify checks that ExecStart's binary exists: show one at its path (an overlay; the
      // host's /usr/local is not written), and verify the file itself.
      res = spawnSync('bash', [join(import.meta.dirname, 'sandbox.sh'), 'systemd-analyze', 'verify', UNIT_FILE], {
        encoding: 'utf8',
        env: {
          PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
          SANDBOX_PLACE: `bind ${binary} ${join(ROOT, 'bin/sluice.js')}`,
          SANDBOX_UID: '0',
          SANDBOX_GID: '0',
        },
      })
    } else {
      // Without root: the same unit with ExecStart's binary pointed at one that exists here.
      const copy = join(tempDir('unit'), 'sluice.service')
      writeFileSync(copy, unit.replaceAll(binary, join(ROOT, 'bin/sluice.js')))
      res = spawnSync('systemd-analyze', ['verify', copy], { encoding: 'utf8' })
    }
    expect(res.stdout + res.stderr).toBe('')
    expect(res.status).toBe(0)
  })

  it('is what docs/operations.md shows', () => {
    const docs = readFileSync(join(ROOT, 'docs/operations.md'), 'utf8')
    const block = /```ini\n# sluice as a systemd service[\s\S]*?```/.exec(docs)?.[0]
    expect(block, 'an ```ini block with the unit in docs/operations.md').toBeDefined()
    expect(block?.slice('```ini\n'.length, -'```'.length)).toBe(readFileSync(UNIT_FILE, 'utf8'))
  })

  it('writes where sluice writes: the state directory (audit trail, store state) and the logs directory', () => {
    const unit = unitService(readFileSync(UNIT_FILE, 'utf8'))
    expect(unit.get('StateDirectory')).toEqual(['sluice'])
    expect(unit.get('LogsDirectory')).toEqual(['sluice'])
    expect(unit.get('ProtectSystem')).toEqual(['strict'])
    expect(unit.get('NoNewPrivileges')).toEqual(['true'])
    expect(unit.get('ExecStart')).toEqual(['/usr/local/bin/sluice start -c /etc/sluice/sluice.yaml'])
    // V8 compiles code at run time: W^X memory would kill Node at start.
    expect(unit.has('MemoryDenyWriteExecute')).toBe(false)
  })
})
