// Configs the replay tests share. Each is the office that population.ts generates (Basic users;
// GET /api/contacts/:id, GET /api/contacts?ids=…, POST /api/contacts/search) under a ladder of
// limits chosen for what its tests assert; no upstream is ever contacted (replay reads logs).
// The numbers are the tests' expectations: change one and the tests that import it change too.

/** The office: Basic users, then its routes. */
const office = (...routes: string[]) => `
version: 1
upstream: { url: http://127.0.0.1:9 }
identity:
  - { type: basic }
routes:${routes.join('')}
`

const limits = (lines: string[]) => lines.map((l) => `\n      - ${l}`).join('')

/** GET /api/contacts/:id, the record in the path. */
const contact = (...ladder: string[]) => `
  - name: contact
    methods: [GET]
    path: /api/contacts/:id
    records: { param: id }
    limits:${limits(ladder)}`

/**
 * The minute every contact ladder starts with: honest clerks stay well under it, the fast
 * enumerator (4 a second) crosses both, the throttle at its 21st record.
 */
const MINUTE = [
  '{ window: 1m, distinctRecords: 20, action: throttle }',
  '{ window: 1m, requests: 40, action: disable }',
]

/** The hour of a log → challenge ladder: two limits on one window (one chart, ratio 100/60). */
const HOUR_LADDER = [
  '{ window: 1h, distinctRecords: 60, action: log }',
  '{ window: 1h, distinctRecords: 100, action: challenge }',
]

/** GET /api/contacts?ids=1,2,3: records from a split query value. */
const CONTACT_LIST = `
  - name: contact-list
    methods: [GET]
    path: /api/contacts
    records: { query: ids, split: "," }
    limits:
      - { window: 10m, distinctRecords: 100, action: challenge }`

/**
 * `sluice replay` and `sluice suggest` as the CLI prints them (cli.test.ts): the fast enumerator
 * throttled at [21, 21, 21] and disabled (1m requests 40) before it reaches 150 records in the
 * hour; only the slow one crosses 1h distinctRecords 150 → challenge, at 19:30.
 */
export const CLI_CONFIG = office(
  contact(...MINUTE, '{ window: 1h, distinctRecords: 150, action: challenge }'),
  CONTACT_LIST,
)

/**
 * A million-line replay in bounded memory (large.test.ts): every kind of route (path records,
 * split query records, no records) and a 1d window, the longest history replay keeps per account.
 */
export const LARGE_CONFIG = office(
  contact(...MINUTE, '{ window: 1d, distinctRecords: 200, action: disable }'),
  CONTACT_LIST,
  `
  - name: contact-search
    methods: [POST]
    path: /api/contacts/search
    limits:
      - { window: 1m, requests: 20, action: throttle }`,
)

/**
 * The HTML report in a browser (report.test.ts): a chart per route and window (the 1h ladder
 * drawn on one), and a route whose records come from the response body, which access logs do
 * not carry: shown as "requests only", its distinct window as not measured.
 */
export const REPORT_CONFIG = office(
  contact(...MINUTE, ...HOUR_LADDER),
  CONTACT_LIST,
  `
  - name: contact-search
    methods: [POST]
    path: /api/contacts/search
    records: { response: "$.items[*].id" }
    limits:
      - { window: 1m, requests: 20, action: throttle }
      - { window: 10m, distinctRecords: 200, action: challenge }`,
)

/**
 * `sluice suggest` (suggest.test.ts): five contact limits whose suggestions must keep the
 * ladders' order (1m throttle → disable, 1h log → challenge at 100/60), and a 1d window that a
 * log of a few hours cannot measure.
 */
export const SUGGEST_CONFIG = office(
  contact(...MINUTE, ...HOUR_LADDER, '{ window: 1d, distinctRecords: 300, action: disable }'),
  CONTACT_LIST,
)
