// The Lua scripts the Redis store runs, read once at load (files next to this module, or the
// single executable's assets: src/assets.ts).
import { readAsset } from '../assets.js'

export const HIT_LUA = readAsset('lua/hit.lua', () => new URL('./lua/hit.lua', import.meta.url))
export const READ_LUA = readAsset('lua/read.lua', () => new URL('./lua/read.lua', import.meta.url))
