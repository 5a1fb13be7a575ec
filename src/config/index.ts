import { compileConfig, type CompiledConfig } from './compile.js'
import { loadConfigFile, parseConfigText, type ParseOptions } from './load.js'

export type { CompiledConfig, CompiledRoute } from './compile.js'

/** Read, validate and compile a YAML config file; throws ConfigError listing every problem with file:line:col. */
export async function loadConfig(file: string, options: Omit<ParseOptions, 'check'> = {}): Promise<CompiledConfig> {
  let compiled: CompiledConfig | undefined
  await loadConfigFile(file, {
    ...options,
    check: (c) => {
      compiled = compileConfig(c)
    },
  })
  return compiled as CompiledConfig
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
