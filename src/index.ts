// The public API: the plugin, the standalone proxy, the config loader and the engine.
export { sluice, type SluiceOptions } from './plugin.js'
export { buildProxy, type ProxyOptions } from './server.js'
export { loadConfig, compileConfigText, type CompiledConfig, type CompiledRoute } from './config/index.js'
export { jsonSchema, type SluiceConfig } from './config/schema.js'
export { Engine, type Decision, type DecisionKind } from './engine/engine.js'
export { MemoryStore } from './store/memory.js'
export type { Store, HitInput, HitResult } from './store/store.js'
export { ConfigError, SluiceError, type ConfigIssue } from './errors.js'
