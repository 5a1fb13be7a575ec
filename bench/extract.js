// Micro-benchmark of the answer extractors alone: each format's extractor run on the bench's
// own pages (fetched from `node bench/targets.js upstream`: the 10 KB JSON list, the ~10 KB
// HTML list page, the ~7 KB CSV export; an XML page of the same 50 records made here), whole
// and in 1 KB chunks, with the selectors of bench/configs.js. Prints CPU µs per page (steadier
// than wall time on a shared machine).
//   node bench/extract.js [--dist dist/index.js-dir] [--n 20000]
// --dist: the compiled sluice to load (default: this checkout's dist/); build with `npm run build`.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'

const args = process.argv.slice(2)
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`)
  return i >= 0 ? args[i + 1] : dflt
}
const dist = resolve(opt('dist', new URL('../dist', import.meta.url).pathname))
const N = Number(opt('n', 20000))
const { compileAnswer } = await import(pathToFileURL(`${dist}/records/answer/index.js`).href)
const { htmlFallbacks: fallbacks = { count: 0 } } = await import(pathToFileURL(`${dist}/records/answer/html.js`).href)

// The pages, exactly as the bench's upstream serves them.
const target = spawn(process.execPath, [new URL('./targets.js', import.meta.url).pathname, 'upstream'], {
  stdio: ['ignore', 'pipe', 'inherit'],
})
let url = ''
for await (const line of target.stdout) {
  const m = /READY (\S+)/.exec(String(line))
  if (m) {
    url = m[1]
    break
  }
}
const get = async (path) => Buffer.from(await (await fetch(`${url}${path}`)).arrayBuffer())
const pages = { json: await get('/list'), html: await get('/list.html'), csv: await get('/export.csv') }
target.kill()
await once(target, 'exit')
const items = JSON.parse(String(pages.json)).items
pages.xml = Buffer.from(
  `<?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><ns2:listResponse xmlns:ns2="urn:addr">${items
    .map(
      (r) =>
        `<ns2:entry id="${r.id}"><ns2:name>${r.name}</ns2:name><ns2:email>${r.email}</ns2:email><ns2:address>${r.street}, ${r.city} ${r.postcode}</ns2:address><ns2:notes>${r.notes}</ns2:notes></ns2:entry>`,
    )
    .join('\n')}</ns2:listResponse></soap:Body></soap:Envelope>`,
)

const cases = [
  ['json', '$.items[*].id', 'application/json'],
  ['html', { html: 'table.results tr[data-id]', attr: 'data-id' }, 'text/html; charset=utf-8'],
  ['html text', { html: 'table.results tr > td > a' }, 'text/html; charset=utf-8', 'html'],
  ['csv', { csv: { column: 'id' } }, 'text/csv; charset=utf-8'],
  ['xml', { xml: '//entry/@id' }, 'text/xml; charset=utf-8'],
]

const chunked = (body, size) => {
  const out = []
  for (let i = 0; i < body.length; i += size) out.push(body.subarray(i, i + size))
  return out
}

function time(fn) {
  for (let i = 0; i < Math.min(2000, N); i++) fn() // warm up
  const start = process.cpuUsage()
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < N; i++) fn()
  const wall = Number(process.hrtime.bigint() - t0) / 1e3 / N
  const cpu = process.cpuUsage(start)
  return { wall, cpu: (cpu.user + cpu.system) / N }
}

console.log(`node ${process.version}, ${N} runs each, dist ${dist}`)
console.log('| format | page | ids | whole: CPU µs/page | in 1 KB chunks: CPU µs/page |')
console.log('|---|---|---|---|---|')
for (const [name, spec, type, page = name] of cases) {
  const x = compileAnswer(spec)
  const body = pages[page]
  const ids = x.extract(body, type).ids.length
  const whole = time(() => x.extract(body, type))
  let streamed = null
  if (typeof x.begin === 'function') {
    const parts = chunked(body, 1024)
    streamed = time(() => {
      const r = x.begin(type)
      for (const p of parts) r.write(p)
      return r.end()
    })
  }
  if (name.startsWith('html') && fallbacks.count > 0)
    console.log(`(${name}: read by the Tokenizer, not the fast scanner)`)
  console.log(
    `| ${name} | ${(body.length / 1024).toFixed(1)} KB | ${ids} | ${whole.cpu.toFixed(1)} | ${streamed ? streamed.cpu.toFixed(1) : '–'} |`,
  )
}
