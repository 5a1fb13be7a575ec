// The public API: the plugin, the standalone proxy, the runtime, the config loader, the
// request classification and the engine.
export { sluice, type SluiceOptions } from './plugin.js'
export { buildProxy, type ProxyOptions } from './server.js'
export { Runtime, type RuntimeOptions, type Live, type ReloadResult } from './runtime.js'
export { loadConfig, compileConfigText, type CompiledConfig, type CompiledRoute } from './config/index.js'
export { jsonSchema, type SluiceConfig } from './config/schema.js'
export { classify, type Classification, type RequestLine } from './exchange/classify.js'
export { Engine, type Decision, type DecisionKind } from './engine/engine.js'
export { MemoryStore } from './store/memory.js'
export type { Store, CountingStore, HitInput, HitResult, StoreHealth } from './engine/store.js'
export { ConfigError, SluiceError, type ConfigIssue } from './errors.js'
