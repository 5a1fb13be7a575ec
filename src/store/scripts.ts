// The Lua scripts the Redis store runs, read once at load.
import { readFileSync } from 'node:fs'

export const HIT_LUA = readFileSync(new URL('./lua/hit.lua', import.meta.url), 'utf8')
export const READ_LUA = readFileSync(new URL('./lua/read.lua', import.meta.url), 'utf8')
