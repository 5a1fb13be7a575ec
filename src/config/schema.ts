// The one source of the configuration's JSON Schema (published as schema/sluice.schema.json for
// editor autocomplete) and of its TypeScript types. Defaults live here too, so the schema
// an editor shows and the values sluice runs with never disagree.
import { Type, type Static, type TSchema } from '@sinclair/typebox'

const DURATION_PATTERN = '^[0-9]+(\\.[0-9]+)?(ms|s|m|h|d)$'

const Duration = (description: string, def?: string) =>
  Type.String({
    pattern: DURATION_PATTERN,
    description: `${description} A number with a unit: 500ms, 30s, 10m, 24h, 7d.`,
    ...(def ? { default: def } : {}),
  })

const Strict = { additionalProperties: false } as const

/** A union told apart by its `type` key: gives one clear error instead of one per branch. */
function Tagged<T extends TSchema[]>(variants: [...T], description: string, def?: object) {
  return Type.Unsafe<Static<T[number]>>({
    type: 'object',
    description,
    ...(def ? { default: def } : {}),
    required: ['type'],
    discriminator: { propertyName: 'type' },
    oneOf: variants,
  })
}

const Listen = Type.Object(
  {
    host: Type.String({ default: '127.0.0.1', description: 'Address to listen on.' }),
    port: Type.Integer({ minimum: 0, maximum: 65535, default: 8080, description: 'TCP port (0 picks a free one).' }),
  },
  { ...Strict, default: {}, description: 'Where the proxy accepts client traffic.' },
)

const Upstream = Type.Object(
  {
    url: Type.String({
      pattern: '^https?://',
      description: 'Base URL of the application sluice guards, e.g. http://127.0.0.1:3000.',
    }),
    timeout: Duration('How long to wait for the upstream to answer before replying 504.', '30s'),
    connectTimeout: Duration('How long to wait for a TCP connection before replying 502.', '5s'),
  },
  { ...Strict, required: ['url'], description: 'The application behind sluice.' },
)

const Paths = Type.Object(
  {
    caseSensitive: Type.Boolean({
      default: false,
      description:
        'Match route paths case-sensitively. Leave false unless the upstream itself is case-sensitive: over-matching is harmless, under-matching is a bypass.',
    }),
    stripMatrixParams: Type.Boolean({
      default: true,
      description:
        'Ignore ;matrix parameters (e.g. ;jsessionid=…) when matching, as servlet containers and many legacy servers do.',
    }),
  },
  { ...Strict, default: {}, description: 'How request paths are matched against routes.' },
)

const MemoryStore = Type.Object(
  {
    type: Type.Literal('memory'),
    maxAccounts: Type.Integer({
      minimum: 1,
      default: 100_000,
      description:
        'Accounts whose windows are held at most. Only an account whose every window is empty is evicted; at capacity, new identities are counted under their client network (overflow:<network>, sluice_store_overflow_total).',
    }),
    state: Type.Optional(
      Type.Object(
        {
          path: Type.String({
            minLength: 1,
            description:
              'The state file, e.g. /var/lib/sluice/state (its directory must exist and be writable). Replaced whole on every write: a temporary file beside it, fsynced, renamed.',
          }),
          every: Duration(
            'How often the state is written in the background (at least 1s); a crash (kill -9, power loss) loses at most this much counting. It is also written on SIGTERM/SIGINT.',
            '10s',
          ),
          onCorrupt: Type.Union([Type.Literal('start'), Type.Literal('refuse')], {
            default: 'start',
            description:
              'A state file that does not verify (truncated, corrupted, another format, unreadable): start moves it aside (<path>.corrupt-<time>), logs an error and starts with what verified (disables verify on their own); refuse does not start.',
          }),
        },
        {
          ...Strict,
          required: ['path'],
          description:
            'Keep counts, disables, session bindings and one-time tokens across restarts in a file. Without it they live only in this process.',
        },
      ),
    ),
  },
  { ...Strict, description: 'Counts held in this process (one instance).' },
)

const RedisUrl = Type.String({
  pattern: '^rediss?://',
  description: 'redis://[user:password@]host:port[/db], or rediss:// for TLS.',
})

const RedisStore = Type.Object(
  {
    type: Type.Literal('redis'),
    url: Type.Optional(RedisUrl),
    cluster: Type.Optional(
      Type.Array(RedisUrl, { minItems: 1, description: 'Seed nodes of a Redis Cluster (instead of url).' }),
    ),
    sentinels: Type.Optional(
      Type.Array(RedisUrl, {
        minItems: 1,
        description:
          'Redis Sentinels of a primary with replicas (instead of url or cluster), e.g. three across two sites; sluice writes to the current primary and follows a failover.',
      }),
    ),
    name: Type.Optional(Type.String({ minLength: 1, description: 'The Sentinel master name (with sentinels).' })),
    sentinelPassword: Type.Optional(
      Type.String({
        minLength: 1,
        description: 'Password of the sentinels (with sentinels). Use ${SLUICE_SENTINEL_PASSWORD}.',
      }),
    ),
    password: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'Password of the Redis nodes behind the sentinels (url and cluster carry theirs in the URL). Use ${SLUICE_REDIS_PASSWORD}.',
      }),
    ),
    keyPrefix: Type.String({ default: 'sluice:', description: 'Prefix of every key sluice writes.' }),
    caFile: Type.Optional(
      Type.String({
        minLength: 1,
        description: 'PEM file of the CA that signed the Redis server certificate (rediss:// with a private CA).',
      }),
    ),
    commandTimeout: Duration('Longest wait for one Redis call before the failure policy answers.', '50ms'),
    onError: Type.Union([Type.Literal('fail-open'), Type.Literal('fail-closed'), Type.Literal('local')], {
      description:
        'When Redis cannot answer: fail-open forwards (and logs), fail-closed answers 503 on sensitive routes, local counts in this instance until Redis is back.',
    }),
    maxAccounts: Type.Integer({ minimum: 1, default: 100_000, description: 'Accounts held by the local fallback.' }),
  },
  {
    ...Strict,
    required: ['type', 'onError'],
    description: 'Counts shared by every sluice instance, in Redis or Redis Cluster.',
  },
)

const Algorithms = Type.Array(
  Type.Union(
    [
      'HS256',
      'HS384',
      'HS512',
      'RS256',
      'RS384',
      'RS512',
      'PS256',
      'PS384',
      'PS512',
      'ES256',
      'ES384',
      'ES512',
      'EdDSA',
    ].map((a) => Type.Literal(a)),
  ),
  { minItems: 1, uniqueItems: true, description: 'Algorithms accepted. Never "none".' },
)

const JwtIdentity = Type.Object(
  {
    type: Type.Literal('jwt'),
    header: Type.String({
      default: 'authorization',
      description: 'Header carrying the token ("Bearer " prefix optional).',
    }),
    cookie: Type.Optional(Type.String({ description: 'Read the token from this cookie instead of a header.' })),
    secret: Type.Optional(
      Type.String({ minLength: 1, description: 'Shared secret for HS* algorithms. Use ${ENV_VAR}.' }),
    ),
    publicKey: Type.Optional(
      Type.String({ minLength: 1, description: 'PEM public key (SPKI) for RS*/PS*/ES*/EdDSA algorithms.' }),
    ),
    algorithms: Algorithms,
    claim: Type.String({ default: 'sub', description: 'Claim naming the account.' }),
    issuer: Type.Optional(Type.String({ description: 'Required "iss".' })),
    audience: Type.Optional(Type.String({ description: 'Required "aud".' })),
    clockTolerance: Type.Optional(
      Duration(
        'Leeway for exp/nbf, as upstream servers allow. A token whose signature is valid but whose time is out even with the leeway still counts against its subject (never a fresh identity).',
        '5m',
      ),
    ),
  },
  {
    ...Strict,
    required: ['type', 'algorithms'],
    description:
      'A verified JWT; the account is jwt:<claim>. Badly signed or malformed tokens yield no account (the next extractor is tried).',
  },
)

const HeaderIdentity = Type.Object(
  {
    type: Type.Literal('header'),
    name: Type.String({
      minLength: 1,
      description: 'Header naming the account (header:<value>), set by an authenticating proxy in front of sluice.',
    }),
    trusted: Type.Boolean({
      default: false,
      description: 'Believe this header from any client. Only true if nothing but your own proxy can reach sluice.',
    }),
  },
  {
    ...Strict,
    required: ['type', 'name'],
    description: 'An account named by a header, believed only from trustedProxies (or when trusted: true).',
  },
)

const Usernames = Type.Union(
  [Type.Literal('case-insensitive'), Type.Literal('case-sensitive'), Type.Literal('exact')],
  {
    default: 'case-insensitive',
    description:
      'How user names compare: case-insensitive (default: Unicode NFKC, case-folded, trimmed, as most logins do), case-sensitive (NFKC and trimmed only), or exact.',
  },
)

const BasicIdentity = Type.Object(
  {
    type: Type.Literal('basic'),
    usernames: Type.Optional(Usernames),
    secret: Type.Optional(
      Type.String({
        minLength: 16,
        description:
          'Key of the password fingerprint in basic:<user>#<fingerprint> (the same on every instance). Use ${SLUICE_IDENTITY_SECRET}. Default: privacy.key, audit.key or actions.challenge.secret, else random per process.',
      }),
    ),
  },
  {
    ...Strict,
    required: ['type'],
    description:
      "The user name of HTTP Basic authentication, keyed with a keyed fingerprint of the password: a wrong password is another account, and cannot spend or disable the real user's budget.",
  },
)

const CookieIdentity = Type.Object(
  {
    type: Type.Literal('cookie'),
    name: Type.String({
      minLength: 1,
      description:
        "Session cookie name, e.g. JSESSIONID. Each session counts as one account; its value is hashed, never stored. Read as servers read it: name case-insensitively, value percent-decoded, `,` separating cookies and a value ending at its first separator (as Tomcat's legacy parser reads them), and from a ;name= path parameter or a ?name= query parameter (URL sessions) too.",
    }),
  },
  { ...Strict, required: ['type', 'name'], description: 'One account per session cookie (session:<fingerprint>).' },
)

const Identity = Tagged([JwtIdentity, HeaderIdentity, BasicIdentity, CookieIdentity], 'An account extractor.')

const Action = Type.Union(
  [Type.Literal('log'), Type.Literal('throttle'), Type.Literal('challenge'), Type.Literal('disable')],
  {
    description:
      'What happens when the limit is crossed. Severity: log < throttle < challenge < disable; the most severe crossed limit acts.',
  },
)

const MODE_DESCRIPTION = 'enforce blocks; shadow decides and logs exactly the same, and blocks nothing.'
const Mode = Type.Union([Type.Literal('enforce'), Type.Literal('shadow')], { description: MODE_DESCRIPTION })

const Limit = Type.Object(
  {
    window: Duration('Sliding window length.'),
    requests: Type.Optional(
      Type.Integer({ minimum: 1, description: 'At most this many requests in any window (blocked ones count too).' }),
    ),
    distinctRecords: Type.Optional(
      Type.Integer({
        minimum: 1,
        description: 'At most this many distinct records in any window; re-reading a record is free.',
      }),
    ),
    distinctAccounts: Type.Optional(
      Type.Integer({
        minimum: 1,
        description:
          'At most this many distinct accounts making requests in any window (with per: network, the accounts seen from one network); a returning account is free.',
      }),
    ),
    per: Type.Optional(
      Type.Union([Type.Literal('account'), Type.Literal('network'), Type.Literal('route')], {
        default: 'account',
        description:
          'Whose requests the windows count: each account (default), all accounts of one client network together (see network), or everyone on the route.',
      }),
    ),
    allowRouteBlock: Type.Optional(
      Type.Boolean({
        description:
          'per: route limits block everyone, so they may only log unless this is true (a kill switch for an incident).',
      }),
    ),
    action: Action,
  },
  {
    ...Strict,
    required: ['window', 'action'],
    description: 'One limit: exactly one of requests, distinctRecords or distinctAccounts.',
  },
)

const Network = Type.Object(
  {
    ipv4: Type.Integer({ minimum: 8, maximum: 32, default: 24, description: 'IPv4 prefix length of a network.' }),
    ipv6: Type.Integer({ minimum: 16, maximum: 128, default: 48, description: 'IPv6 prefix length of a network.' }),
  },
  {
    ...Strict,
    default: {},
    description: 'How client addresses group into networks for per: network limits (default /24 and /48).',
  },
)

const ParamRecords = Type.Object(
  {
    param: Type.String({
      minLength: 1,
      description: 'Path parameter naming the record, e.g. id for /api/contacts/:id.',
    }),
    split: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'Separator when one segment names several records, e.g. "," for /api/contacts/1,2,3 (Spring binds it to a List).',
      }),
    ),
  },
  { ...Strict, required: ['param'] },
)
const QueryRecords = Type.Object(
  {
    query: Type.String({
      minLength: 1,
      description: 'Query parameter naming the record(s); repeated parameters all count.',
    }),
    split: Type.Optional(
      Type.String({ minLength: 1, description: 'Separator when one value names several records, e.g. ",".' }),
    ),
  },
  { ...Strict, required: ['query'] },
)
const Size = Type.Union(
  [Type.Integer({ minimum: 1 }), Type.String({ pattern: '^[0-9]+(\\.[0-9]+)?\\s*(b|kb|mb|gb)$' })],
  {
    description: 'A size: bytes as a number, or with a unit: 512kb, 4mb.',
  },
)
const Selector = (where: string) =>
  Type.String({
    minLength: 1,
    description: `JSON selector of the record ids in the ${where}: $ then .name, ["name"], [n], [*]; e.g. $.items[*].id`,
  })
const InspectOptions = {
  maxIds: Type.Optional(
    Type.Integer({
      minimum: 1,
      maximum: 10_000_000,
      description:
        'Most record ids one body may name (default 10,000): a body with more is uninspectable (refused with 413, or an answer withheld with 502, under uninspectable: block). Bounds the work one request can cause.',
    }),
  ),
  maxInspectBytes: Type.Optional(
    Type.Union(Size.anyOf, {
      description: 'Largest body read for ids (after decompression); bigger bodies are uninspectable. Default 4mb.',
    }),
  ),
  uninspectable: Type.Optional(
    Type.Union([Type.Literal('block'), Type.Integer({ minimum: 0 })], {
      description:
        'A body that cannot be read for ids (too large, not JSON, undecodable): block (default: refuse such a request, withhold such a response with 502), or let it through counted as this many new distinct records (which may cross a limit and withhold it).',
    }),
  ),
}
const BodyRecords = Type.Object(
  { body: Selector('request body (JSON or a form)'), ...InspectOptions },
  { ...Strict, required: ['body'] },
)
const Match = Type.Optional(
  Type.String({
    minLength: 1,
    description:
      'A regular expression on each selected value: every match is an id (its capture group 1 when it has one), e.g. "[?&]id=(\\d+)" on a link.',
  }),
)
const AnswerSelector = Type.Union(
  [
    Selector("upstream's JSON response (2xx only)"),
    Type.Object(
      { json: Selector("upstream's JSON response (2xx only)") },
      { ...Strict, required: ['json'], description: 'JSON, the explicit form.' },
    ),
    Type.Object(
      {
        html: Type.String({
          minLength: 1,
          description:
            'CSS selector of the elements holding ids (tags, *, .class, #id, [attr] tests, descendant and > combinators, lists), e.g. "table.results tr[data-id]".',
        }),
        attr: Type.Optional(
          Type.String({ minLength: 1, description: "The attribute holding the id; without it, the element's text." }),
        ),
        match: Match,
      },
      { ...Strict, required: ['html'], description: 'Ids in an HTML page.' },
    ),
    Type.Object(
      {
        xml: Type.String({
          minLength: 1,
          description:
            'XPath of the ids: child steps, //, *, @attr or text() last; namespace prefixes ignored. e.g. /Envelope/Body/lookupResponse/entry/@id',
        }),
        match: Match,
      },
      { ...Strict, required: ['xml'], description: 'Ids in an XML (SOAP) answer.' },
    ),
    Type.Object(
      {
        csv: Type.Object(
          {
            column: Type.Union([Type.String({ minLength: 1 }), Type.Integer({ minimum: 1 })], {
              description: 'The column of the ids: its header name, or its number from 1.',
            }),
            delimiter: Type.Optional(
              Type.String({
                minLength: 1,
                maxLength: 1,
                description: 'Default: what the header line uses (, ; tab |).',
              }),
            ),
            quote: Type.Optional(Type.String({ minLength: 1, maxLength: 1, description: 'Default ".' })),
            header: Type.Optional(Type.Boolean({ description: 'The first row names the columns (default true).' })),
          },
          { ...Strict, required: ['column'] },
        ),
        match: Match,
      },
      { ...Strict, required: ['csv'], description: 'Ids in a CSV export.' },
    ),
  ],
  {
    description:
      'Where the ids are in the answer: a JSON selector ("$.items[*].id"), or { html, attr?, match? }, { xml, match? }, { csv: { column }, match? }.',
  },
)
const ResponseRecords = Type.Object(
  { response: AnswerSelector, ...InspectOptions },
  { ...Strict, required: ['response'] },
)
const Records = Type.Union([ParamRecords, QueryRecords, BodyRecords, ResponseRecords], {
  description:
    'Where the record ids are: { param: id }, { query: id, split: "," }, { body: "$.ids[*]" } or { response: "$.items[*].id" }.',
})

const Method = Type.Union(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'].map((m) => Type.Literal(m)))

const Route = Type.Object(
  {
    name: Type.String({
      pattern: '^[A-Za-z0-9_.-]+$',
      description: 'Unique name, used in logs, metrics and the store.',
    }),
    methods: Type.Optional(
      Type.Array(Method, {
        minItems: 1,
        uniqueItems: true,
        description: 'Methods this route covers (HEAD is always counted as GET). Default: all.',
      }),
    ),
    path: Type.String({
      pattern: '^/',
      description: 'Path pattern: literal segments, :name for one segment, * for the rest. e.g. /api/contacts/:id',
    }),
    mode: Type.Optional(Mode),
    records: Type.Optional(Records),
    clampQuery: Type.Optional(
      Type.Record(Type.String({ minLength: 1 }), Type.Integer({ minimum: 1 }), {
        description:
          'Query parameters capped before forwarding, e.g. { pageSize: 50 }: a value that is not a whole number from 1 to the cap is rewritten to the cap.',
      }),
    ),
    limits: Type.Array(Limit, { minItems: 1 }),
  },
  { ...Strict, required: ['name', 'path', 'limits'], description: 'A sensitive route: counted per account.' },
)

const Actions = Type.Object(
  {
    throttle: Type.Object({ retryAfter: Duration('Retry-After sent with 429.', '30s') }, { ...Strict, default: {} }),
    challenge: Type.Object(
      {
        difficulty: Type.Integer({
          minimum: 1000,
          maximum: 100_000_000,
          default: 300_000,
          description:
            'Most SHA-256 hashes a solution takes (about half to all of it; see docs/challenge.md for solve times).',
        }),
        validFor: Duration('How long a solved challenge passes its limit (while its grants last).', '10m'),
        grants: Type.Integer({
          minimum: 1,
          maximum: 100_000,
          default: 20,
          description:
            'What one solved challenge buys: this many records (or requests, on a requests limit) past the limit; then the next challenge comes, twice as hard for an account that keeps solving.',
        }),
        timeout: Duration('How long a challenge can be solved and submitted.', '5m'),
        secret: Type.Optional(
          Type.String({
            minLength: 16,
            description:
              'HMAC key signing challenges and passes; the same on every instance. Use ${SLUICE_CHALLENGE_SECRET}. Default: random per process (one instance only).',
          }),
        ),
      },
      { ...Strict, default: {}, description: 'The proof-of-work challenge.' },
    ),
    disable: Type.Object(
      {
        duration: Type.Union([Duration('How long the account stays disabled.'), Type.Literal('forever')], {
          default: '24h',
          description: 'How long the account stays disabled, or forever (until an operator unlocks it).',
        }),
      },
      { ...Strict, default: {} },
    ),
    page: Type.Object(
      {
        title: Type.Optional(
          Type.String({ minLength: 1, maxLength: 200, description: "The service's name, in the block page's title." }),
        ),
        message: Type.Optional(
          Type.String({ minLength: 1, maxLength: 2000, description: 'A paragraph of your own on the block page.' }),
        ),
        contact: Type.Optional(
          Type.String({
            minLength: 1,
            maxLength: 500,
            description: 'A support contact line (e.g. "Questions? support@example.com, +41 58 000 00 00").',
          }),
        ),
        language: Type.String({
          pattern: '^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$',
          default: 'en',
          description: 'The page language (the lang attribute), e.g. en, de, fr-CH.',
        }),
      },
      {
        ...Strict,
        default: {},
        description:
          'The HTML block page (browsers): your title, message and contact line. It always shows the reference and when to come back; never which limit or how close.',
      },
    ),
  },
  { ...Strict, default: {}, description: 'How each action answers.' },
)

const Admin = Type.Object(
  {
    listen: Type.Object(
      {
        host: Type.String({ default: '127.0.0.1', description: 'Keep it on loopback or a management network.' }),
        port: Type.Integer({ minimum: 0, maximum: 65535, default: 9090 }),
      },
      { ...Strict, default: {} },
    ),
    readiness: Type.Object(
      {
        upstream: Type.Boolean({
          default: true,
          description:
            'The standalone proxy: /readyz answers 503 while a TCP connection to the upstream cannot be made (checked in the background).',
        }),
        checkEvery: Duration('How often the upstream is checked.', '5s'),
        timeout: Duration('How long one check waits for the connection.', '2s'),
      },
      { ...Strict, default: {}, description: 'What /readyz checks besides the store and the audit trail.' },
    ),
    token: Type.Optional(
      Type.String({
        minLength: 16,
        description: 'Bearer token for the admin API and /metrics. Use ${SLUICE_ADMIN_TOKEN}.',
      }),
    ),
    tokens: Type.Optional(
      Type.Array(
        Type.Object(
          {
            name: Type.String({
              pattern: '^[A-Za-z0-9_.@-]+$',
              description: 'Who holds it: recorded with every admin action done with this token.',
            }),
            token: Type.String({ minLength: 16, description: 'Use ${SLUICE_ADMIN_TOKEN_<NAME>}.' }),
          },
          Strict,
        ),
        {
          minItems: 1,
          description:
            'Named bearer tokens (instead of, or beside, token): the audit trail records which one did each admin action.',
        },
      ),
    ),
    decisionsKept: Duration(
      'How long a block reference can be looked up (GET /decisions/:ref, sluice incidents show REF).',
      '7d',
    ),
    console: Type.Object(
      {
        enabled: Type.Boolean({
          default: true,
          description: 'Serve the web console at /console on the admin listener (signed in with an admin token).',
        }),
        sessionTtl: Duration('How long a console sign-in lasts before the operator signs in again.', '8h'),
      },
      { ...Strict, default: {}, description: "The operators' web console (docs/console.md)." },
    ),
  },
  {
    ...Strict,
    anyOf: [{ required: ['token'] }, { required: ['tokens'] }],
    description:
      'The admin listener: /healthz, /readyz, /metrics. Never on the public port. Needs token, tokens, or both.',
  },
)

const Audit = Type.Object(
  {
    file: Type.String({
      minLength: 1,
      description: 'The live audit file (JSON lines, hash-chained). Rotated files are renamed next to it.',
    }),
    key: Type.Optional(
      Type.String({
        minLength: 16,
        description:
          'HMAC key of the chain (and, unless pseudonymKey is set, of record pseudonyms): nobody without it can rewrite the trail consistently. Use ${SLUICE_AUDIT_KEY}.',
      }),
    ),
    fsync: Type.Union([Type.Literal('always'), Type.Literal('interval'), Type.Literal('never')], {
      default: 'interval',
      description:
        'always: every batch is on disk before the next; interval: at most fsyncInterval of entries can be lost in a power cut; never: the OS decides.',
    }),
    fsyncInterval: Duration('How often to fsync with fsync: interval.', '1s'),
    rotate: Type.Optional(
      Type.Union(Size.anyOf, {
        description:
          'Rotate the live file at this size (e.g. 100mb); the next file continues the chain. Default: never.',
      }),
    ),
    queueLimit: Type.Integer({
      minimum: 100,
      maximum: 10_000_000,
      default: 10_000,
      description: 'Entries accepted but not yet written, at most (while the disk fails, they wait here).',
    }),
  },
  {
    ...Strict,
    required: ['file'],
    description:
      'The tamper-evident audit trail: every decision other than allow, every disable, unlock and admin action, every reload.',
  },
)

const Privacy = Type.Object(
  {
    pseudonymise: Type.Boolean({
      default: true,
      description:
        'Record ids in logs, the audit trail and incidents become keyed pseudonyms (~ and 32 hex digits, HMAC-SHA256): the trail proves what happened without exposing which records were read. Account ids stay readable.',
    }),
    key: Type.Optional(
      Type.String({
        minLength: 16,
        description:
          'Key of the pseudonyms; the same on every instance and across restarts, so one record keeps one pseudonym. Use ${SLUICE_PSEUDONYM_KEY}. Default: derived from audit.key, else random per process.',
      }),
    ),
  },
  { ...Strict, default: {}, description: "What of the users' data sluice writes down." },
)

const Webhook = Type.Object(
  {
    url: Type.String({ pattern: '^https?://', description: 'Receiver of POSTed incidents (JSON).' }),
    secret: Type.String({
      minLength: 16,
      description: 'HMAC-SHA256 key of the sluice-signature header. Use ${SLUICE_WEBHOOK_SECRET}.',
    }),
    events: Type.Array(Type.String({ minLength: 1 }), {
      minItems: 1,
      description:
        'Incident types to send: disable, challenge, throttle, log (decisions), unlock, reset, admin (operator actions), reload; or "*".',
    }),
    timeout: Duration('Give up one attempt after this long.', '5s'),
  },
  { ...Strict, required: ['url', 'secret', 'events'] },
)

const Notify = Type.Object(
  {
    webhooks: Type.Array(Webhook, { minItems: 1 }),
    queueLimit: Type.Integer({
      minimum: 1,
      maximum: 1_000_000,
      default: 1000,
      description:
        'Incidents waiting per webhook, at most; when full, the least severe (then the newest) are dropped first: a flood is coalesced, and a disable from outside it is kept (counted and logged).',
    }),
    maxAttempts: Type.Integer({
      minimum: 1,
      maximum: 100,
      default: 6,
      description: 'Attempts per incident, with exponential backoff and jitter.',
    }),
  },
  {
    ...Strict,
    required: ['webhooks'],
    description: 'Tell an operator: signed webhooks for incidents, retried, never on the request path.',
  },
)

const Sessions = Type.Object(
  {
    login: Type.Object(
      {
        method: Type.Union([Type.Literal('POST'), Type.Literal('GET'), Type.Literal('PUT')], { default: 'POST' }),
        path: Type.String({ pattern: '^/', description: "The login form's target, e.g. /login." }),
        usernameField: Type.String({
          minLength: 1,
          description: 'Field of the login body (form or JSON) holding the user name.',
        }),
        cookie: Type.String({
          minLength: 1,
          description: 'Session cookie the upstream sets on success, e.g. JSESSIONID (also a cookie identity).',
        }),
        successStatus: Type.Optional(
          Type.Array(Type.Integer({ minimum: 100, maximum: 599 }), {
            minItems: 1,
            description: 'Statuses that mean success. Default: any 2xx or 3xx.',
          }),
        ),
      },
      { ...Strict, required: ['path', 'usernameField', 'cookie'] },
    ),
    logout: Type.Optional(
      Type.Object(
        {
          method: Type.Optional(Type.Union([Type.Literal('POST'), Type.Literal('GET')])),
          path: Type.String({ pattern: '^/' }),
        },
        {
          ...Strict,
          required: ['path'],
          description:
            'Logouts are logged; the session stays bound (counts belong to the user, and a logout the upstream ignores must not refund them).',
        },
      ),
    ),
    ttl: Duration('How long a binding lasts when the cookie names no lifetime.', '12h'),
    usernames: Usernames,
  },
  {
    ...Strict,
    required: ['login'],
    description: 'Bind session cookies to the account that logged in: logging in again does not reset its budget.',
  },
)

const Inspection = Type.Object(
  {
    memory: Type.Union(Size.anyOf, {
      default: '256mb',
      description:
        'Bytes of bodies held for inspection across all requests at once (request bodies being read, answers held until sent). Past it, requests to inspected routes are answered 503 (Retry-After) until memory is free: the heap stays bounded whatever clients do.',
    }),
    sendTimeout: Duration(
      'How long an inspected answer may take to reach a client that reads slowly before its connection is closed (its memory freed).',
      '30s',
    ),
  },
  { ...Strict, default: {}, description: 'Limits on the work and memory that reading bodies for record ids may take.' },
)

const Log = Type.Object(
  {
    level: Type.Union(
      ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
      { default: 'info' },
    ),
  },
  { ...Strict, default: {} },
)

const Override = Type.Object(
  {
    accounts: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        minItems: 1,
        description:
          'Account ids or globs (* any run of characters, ? one): header:alice, user:corp-*, basic:pager#*. A name without a known prefix also matches it under header:, jwt:, user: and basic: (alice is header:alice, jwt:alice, user:alice, basic:alice#…).',
      }),
    ),
    networks: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        minItems: 1,
        description: 'CIDRs (or addresses) of the client address (X-Forwarded-For resolved through trusted proxies).',
      }),
    ),
    claims: Type.Optional(
      Type.Record(Type.String({ minLength: 1 }), Type.Union([Type.String(), Type.Number(), Type.Boolean()]), {
        description:
          'Claims of a verified JWT identity, all of which must be equal (an array claim: must contain the value). Never read from an unverified token.',
      }),
    ),
    routes: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        minItems: 1,
        description: 'Only on these routes (names); without it, on every route.',
      }),
    ),
    exempt: Type.Optional(
      Type.Boolean({ description: 'Counted and logged as shadow decisions ("exempt"), never blocked.' }),
    ),
    scale: Type.Optional(
      Type.Number({
        exclusiveMinimum: 0,
        description:
          'Multiply every per-account threshold (and per-network ones, for an override matched by networks only) on the matched routes: 10 lets ten times as much through, 0.5 half.',
      }),
    ),
  },
  {
    ...Strict,
    description:
      'Who gets other limits: the first override whose matchers all match (accounts, networks, claims; at least one) applies, with exempt: true or a scale.',
  },
)

export const ConfigSchema = Type.Object(
  {
    $schema: Type.Optional(Type.String()),
    version: Type.Literal(1, { description: 'Configuration format version.' }),
    listen: Type.Optional(Listen),
    upstream: Upstream,
    mode: Type.Optional(
      Type.Union([Type.Literal('enforce'), Type.Literal('shadow')], {
        default: 'enforce',
        description: MODE_DESCRIPTION,
      }),
    ),
    trustedProxies: Type.Optional(
      Type.Array(Type.String(), {
        default: [],
        description: 'CIDRs (or addresses) of proxies whose X-Forwarded-For and identity headers are believed.',
      }),
    ),
    network: Type.Optional(Network),
    paths: Type.Optional(Paths),
    methodOverride: Type.Optional(
      Type.Union([Type.Literal('strip'), Type.Literal('forward')], {
        default: 'strip',
        description:
          'X-HTTP-Method-Override and friends: matched as the method they name either way; strip (default) removes them before forwarding.',
      }),
    ),
    store: Type.Optional(Tagged([MemoryStore, RedisStore], 'Where counts are kept.', { type: 'memory' })),
    identity: Type.Optional(
      Type.Array(Identity, {
        default: [],
        description: 'Tried in order; if none yields an account, the client IP is the key.',
      }),
    ),
    routes: Type.Array(Route, { description: 'Sensitive routes. Everything else is forwarded untouched.' }),
    overrides: Type.Optional(
      Type.Array(Override, {
        description: 'Exemptions and scaled limits for known bulk users; the first that matches a request applies.',
      }),
    ),
    sessions: Type.Optional(Sessions),
    actions: Type.Optional(Actions),
    admin: Type.Optional(Admin),
    audit: Type.Optional(Audit),
    notify: Type.Optional(Notify),
    privacy: Type.Optional(Privacy),
    inspection: Type.Optional(Inspection),
    log: Type.Optional(Log),
  },
  {
    ...Strict,
    required: ['version', 'upstream', 'routes'],
    $id: 'https://sluice.dev/schema/sluice.schema.json',
    title: 'sluice configuration',
    description: "sluice: stop bulk data extraction through your app's own endpoints.",
  },
)

export type SluiceConfig = Static<typeof ConfigSchema>
export type RouteConfig = Static<typeof Route>
export type LimitConfig = Static<typeof Limit>
export type IdentityConfig = Static<typeof Identity>
export type RecordsConfig = Static<typeof Records>
export type SessionsConfig = Static<typeof Sessions>
export type StoreConfig = Static<typeof RedisStore> | Static<typeof MemoryStore>
export type ActionName = Static<typeof Action>
export type ModeName = Static<typeof Mode>
export type OverrideConfig = Static<typeof Override>

/**
 * The JSON Schema as plain JSON. `forEditors` drops keys that have a default from `required`:
 * an editor does not apply defaults, so it must not ask for them (sluice validates with
 * defaults applied, where they are always present).
 */
export function jsonSchema(forEditors = false): Record<string, unknown> {
  const schema = { $schema: 'http://json-schema.org/draft-07/schema#', ...JSON.parse(JSON.stringify(ConfigSchema)) }
  if (forEditors) relaxDefaulted(schema)
  return schema
}

function relaxDefaulted(node: unknown): void {
  if (Array.isArray(node)) return node.forEach(relaxDefaulted)
  if (node === null || typeof node !== 'object') return
  const obj = node as { required?: string[]; properties?: Record<string, { default?: unknown }> }
  if (obj.required && obj.properties) {
    const props = obj.properties
    obj.required = obj.required.filter((k) => props[k]?.default === undefined)
  }
  Object.values(obj).forEach(relaxDefaulted)
}
