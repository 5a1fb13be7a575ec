// The YAML of the bench's sluice scenarios: bench/targets.js compiles it in its process,
// `npm run bench -- --cli` hands it to `sluice start -c` as a file.
const ROUTES = `
routes:
  - name: contact
    methods: [GET]
    path: /records/:id
    records: { param: id }
    limits:
      - { window: 1m,  requests: 1000,        action: throttle }
      - { window: 10m, distinctRecords: 500,  action: challenge }
      - { window: 24h, distinctRecords: 5000, action: disable }
  - name: unused
    path: /api/never/:id
    limits: [ { window: 1m, requests: 10, action: throttle } ]
`

// Scenario 4b: the same sensitive route with the keys of one actor's many identities as well:
// all accounts of a client network together, and everyone on the route. The load comes from
// one address (loopback), so it is one busy network with every account and record behind it —
// its logs as large as the route's; the limits are never reached.
const SCOPED = ROUTES.replace(
  '      - { window: 24h, distinctRecords: 5000, action: disable }\n',
  `      - { window: 24h, distinctRecords: 5000, action: disable }
      - { per: network, window: 1h, distinctRecords: 200000, action: challenge }
      - { per: network, window: 1h, distinctAccounts: 20000, action: challenge }
      - { per: route, window: 1h, distinctRecords: 200000, action: log }
`,
)

// Scenario 6: the list endpoint (50 records, about 10 KB of JSON) with its ids counted from
// every response before it is sent.
const INSPECTED = `
  - name: list
    methods: [GET]
    path: /list
    records: { response: "$.items[*].id" }
    limits:
      - { window: 1m,  requests: 1000,        action: throttle }
      - { window: 10m, distinctRecords: 500,  action: challenge }
      - { window: 24h, distinctRecords: 5000, action: disable }
  - name: list-html
    methods: [GET]
    path: /list.html
    records: { response: { html: "table.results tr[data-id]", attr: data-id } }
    limits:
      - { window: 1m,  requests: 1000,        action: throttle }
      - { window: 10m, distinctRecords: 500,  action: challenge }
  - name: export
    methods: [GET]
    path: /export.csv
    records: { response: { csv: { column: id } } }
    limits:
      - { window: 1m,  requests: 1000,        action: throttle }
      - { window: 10m, distinctRecords: 500,  action: challenge }
`

export function configFor(name, { upstream, redis, prefix }) {
  const store =
    name === 'redis'
      ? `store: { type: redis, url: "${redis}", keyPrefix: "${prefix}", onError: fail-open, commandTimeout: 500ms }`
      : 'store: { type: memory, maxAccounts: 200000 }'
  return `version: 1
upstream: { url: ${upstream} }
log: { level: warn }
${store}
identity:
  - { type: header, name: x-account-id, trusted: true }
${name === 'scoped' ? SCOPED : ROUTES}${name === 'inspect' ? INSPECTED : ''}
actions:
  challenge: { secret: bench-challenge-secret-0123456789 }
`
}

/**
 * The path of the bench's n-th request for a load of `kind`: a record by id (many accounts
 * rotating, each reading a few records), or a page of the list, the HTML page or the CSV export.
 * bench/run.js and bench/ab.js load the same.
 */
export function pathOf(kind, n) {
  if (kind === 'list') return `/list?page=${n % 20}`
  if (kind === 'html') return `/list.html?page=${n % 20}`
  if (kind === 'csv') return `/export.csv?page=${n % 20}`
  return `/records/${(n * 7919) % 100_000}`
}
