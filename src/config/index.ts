import { createHash } from 'node:crypto'
import { compileConfig, type CompiledConfig } from './compile.js'
import { loadConfigFile, parseConfigText, type ParseOptions } from './load.js'

export type { CompiledConfig, CompiledRoute } from './compile.js'

/** Read, validate and compile a YAML config file; throws ConfigError listing every problem with file:line:col. */
export async function loadConfig(file: string, options: Omit<ParseOptions, 'check'> = {}): Promise<CompiledConfig> {
  let compiled: CompiledConfig | undefined
  let hash: string | undefined
  await loadConfigFile(file, {
    ...options,
    onText: (text) => void (hash = createHash('sha256').update(text, 'utf8').digest('hex')),
    check: (c) => {
      compiled = compileConfig(c)
    },
  })
  const config = compiled as CompiledConfig
  if (hash !== undefined) config.configHash = hash
  return config
}

/** The same from YAML text (tests, embedding). */
export function compileConfigText(
  text: string,
  file = '<config>',
  options: Omit<ParseOptions, 'check'> = {},
): CompiledConfig {
  let compiled: CompiledConfig | undefined
  parseConfigText(text, file, {
    ...options,
    check: (c) => {
      compiled = compileConfig(c)
    },
  })
  return compiled as CompiledConfig
}
