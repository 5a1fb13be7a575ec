// Every example config ships valid, and the published JSON Schema matches the code.
import { generateKeyPairSync } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { loadConfig } from '../../src/config/index.js'
import { jsonSchema } from '../../src/config/schema.js'

const dir = join(import.meta.dirname, '../../examples')
const examples = readdirSync(dir).filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'))

describe('examples', () => {
  it('exist', () => {
    expect(examples.length).toBeGreaterThanOrEqual(3)
  })

  it.each(examples)('%s validates', async (file) => {
    const path = join(dir, file)
    // Examples read secrets from the environment; give every ${NAME} a stand-in value.
    const env: Record<string, string> = {}
    for (const [, name = ''] of readFileSync(path, 'utf8').matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g))
      env[name as string] =
        name === 'JWT_PUBLIC_KEY'
          ? TEST_PEM
          : name.endsWith('REDIS_URL')
            ? 'redis://127.0.0.1:6379'
            : `test-${name}-value-long-enough-for-hs256`
    const config = await loadConfig(path, { env })
    expect(config.routes.length).toBeGreaterThan(0)
  })
})

describe('published schema', () => {
  it('schema/sluice.schema.json is what `sluice schema` prints', () => {
    const committed = JSON.parse(readFileSync(join(import.meta.dirname, '../../schema/sluice.schema.json'), 'utf8'))
    expect(committed).toEqual(jsonSchema(true))
  })
})

const TEST_PEM = generateKeyPairSync('rsa', { modulusLength: 2048 })
  .publicKey.export({ type: 'spki', format: 'pem' })
  .toString()
