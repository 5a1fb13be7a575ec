// Debian's headless Chromium through playwright-core (no browser download). Tests that need it
// skip with a reason when /usr/bin/chromium is absent; CI installs it, so there they run.
import { existsSync, mkdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium, type Browser } from 'playwright-core'

export const CHROMIUM = process.env.SLUICE_CHROMIUM ?? '/usr/bin/chromium'
export const hasChromium = existsSync(CHROMIUM)

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  })
}

/** Where screenshots go: artifacts of the test run, never committed. */
export function screenshotPath(name: string): string {
  const dir = process.env.SLUICE_ARTIFACTS ?? join(tmpdir(), 'sluice-artifacts')
  mkdirSync(dir, { recursive: true })
  return join(dir, name)
}
