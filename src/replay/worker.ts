// A replay worker (threads.ts): pieces of whole lines in, a batch per piece out. It compiles its
// own copy of the config (compiled routes hold functions, which cannot cross threads) and
// refuses to start if its routes are not the replay's.
import { parentPort, workerData } from 'node:worker_threads'
import { compileConfig } from '../config/compile.js'
import { canonicalOptions } from '../exchange/classify.js'
import type { FormatName } from './formats.js'
import { eachLineOf } from './lines.js'
import { LineReader } from './read.js'
import { BatchSink, type Piece, type WorkerSetup } from './batch.js'

const setup = workerData as WorkerSetup
const config = compileConfig(setup.source)
const names = config.routes.map((r) => r.name)
if (names.join('\n') !== setup.routes.join('\n'))
  throw new Error(`replay worker: the config compiled to other routes (${names.join(', ')})`)
const sink = new BatchSink(setup.keepBad)
const reader = new LineReader(
  {
    routes: config.routes,
    sessions: config.sessions,
    canonical: canonicalOptions(config.paths.stripMatrixParams),
  },
  setup.options,
  sink,
)
let format: FormatName | undefined
const port = parentPort as NonNullable<typeof parentPort>

port.on('message', (piece: Piece) => {
  if (piece.format !== format) reader.start((format = piece.format))
  reader.lineNo = 0
  sink.reset(piece.seq)
  const bytes = Buffer.from(piece.bytes.buffer, piece.bytes.byteOffset, piece.bytes.byteLength)
  const batch = sink.take(eachLineOf(bytes, piece.last, reader))
  port.postMessage(batch, [batch.routed.buffer as ArrayBuffer])
})
