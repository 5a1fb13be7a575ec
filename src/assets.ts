// The files sluice reads at run time besides the operator's own: the Redis store's Lua scripts,
// the demo's config and package.json (for --version). From a checkout or an npm install they are
// files next to the code, found from the caller's import.meta.url; inside the single executable
// (`npm run build:exe`, scripts/build-exe.mjs) they are its assets, keyed by the same names.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { getAsset, isSea } from 'node:sea'
import { fileURLToPath } from 'node:url'

/** True inside the single executable. */
export const inExecutable: boolean = isSea()

/**
 * The text of a shipped file. `name` is its asset key (see scripts/build-exe.mjs); `file` locates
 * it on disk otherwise (a function: the bundled executable has no import.meta.url).
 */
export function readAsset(name: string, file: () => URL): string {
  return inExecutable ? getAsset(name, 'utf8') : readFileSync(file(), 'utf8')
}

/**
 * A path to a shipped file, for what takes a path (the demo's config). Inside the executable, a
 * copy in a private temporary directory, removed when the process exits.
 */
export function assetPath(name: string, file: () => URL): string {
  if (!inExecutable) return fileURLToPath(file())
  const dir = mkdtempSync(join(tmpdir(), 'sluice-'))
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }))
  const path = join(dir, basename(name))
  writeFileSync(path, getAsset(name, 'utf8'), { mode: 0o600 })
  return path
}
