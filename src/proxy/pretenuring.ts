// V8's allocation-site pretenuring off for the standalone proxy's process.
//
// Why: V8 learns, per allocation site, whether its objects tend to survive young-generation
// collections and, once it decides they do, allocates them straight in the old generation — a
// decision it never revisits (objects allocated old carry no feedback). A proxy's hot sites
// allocate per-request objects that die within milliseconds; if such a site is sampled while
// requests are in flight across a collection (after an idle spell, when V8's memory reducer
// collects and shrinks the young generation), it is tenured for good, the old generation fills
// with short-lived garbage and the process runs full mark-compacts several times a second. On
// Node 24 that happened to about half of the processes started under the bench's interleaved
// load: 90–110 µs of CPU a request instead of 70–80, 12–20 mark-compacts a minute instead of
// 2–6 (`--trace-gc`), for the life of the process (docs/design.md, "The heap"). Without
// pretenuring every process measured the fast way. Nothing sluice keeps for long is allocated at
// a rate where pretenuring would pay (windows live in typed-array chunks, src/store/arena.ts).
//
// Set at run time because `NODE_OPTIONS` refuses this flag; V8 reads it whenever it processes
// feedback, so it holds from here on. The Fastify plugin leaves its host's process alone.
import { setFlagsFromString } from 'node:v8'

export function disablePretenuring(): void {
  setFlagsFromString('--no-allocation-site-pretenuring')
}
