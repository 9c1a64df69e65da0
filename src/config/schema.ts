import { Type, type Static } from '@sinclair/typebox';
import { Duration, Size, Strict, StringEnum } from './types.js';
import { IdentitySchema } from '../identity/schema.js';
import { VersionSchema } from '../policies/versioning/schema.js';
import { AlertsSchema } from '../observability/alert-schema.js';

/**
 * The schema of rampart.yaml (policy options are validated against each policy's own schema, see
 * src/policies). Every field has a description: docs/configuration.md is generated from them.
 */

export const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'QUERY'] as const;

const NAME_PATTERN = '^[a-z0-9][a-z0-9._-]{0,63}$';
const NAME_EXPECTED = 'a name of lowercase letters, digits, ".", "_" or "-" (at most 64 characters)';

const Listen = (host: string, port: number, what: string) =>
  Strict(
    {
      host: Type.String({ minLength: 1, description: `Address ${what} binds to.`, default: host }),
      port: Type.Integer({ minimum: 0, maximum: 65535, description: `TCP port ${what} listens on (0 picks a free port).`, default: port }),
    },
    { description: `Where ${what} listens.`, default: {} },
  );

const ServerTimeouts = Strict(
  {
    headers: Duration({ description: 'Time allowed to receive the request line and headers.', default: '10s' }),
    request: Duration({
      description: 'Time allowed to receive a whole request, body included (large uploads need more).',
      default: '5m',
    }),
    keepAlive: Duration({ description: 'How long an idle client connection is kept open.', default: '5s' }),
  },
  { description: 'Client-side timeouts of the main listener.', default: {} },
);

/** Mozilla's "intermediate" TLS 1.2 suites minus DHE: ECDHE key exchange and AEAD ciphers only. */
export const DEFAULT_CIPHERS =
  'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305';

const TlsFiles = Strict(
  {
    cert: Type.String({ minLength: 1, description: 'PEM certificate file (relative to the config file). Intermediate certificates may follow it in the same file, or go in `chain`.' }),
    key: Type.String({ minLength: 1, description: 'PEM private key file (relative to the config file). Keep it readable by the gateway\'s user only.' }),
    chain: Type.Optional(Type.String({ minLength: 1, description: 'PEM file of intermediate certificates sent after `cert`.' })),
    minVersion: Type.Optional(StringEnum(['TLSv1.2', 'TLSv1.3'] as const, {
      description: 'Oldest TLS version accepted (default `TLSv1.2`). TLS 1.0 and 1.1 are never offered; TLS 1.3 is preferred when the client has it.',
    })),
    ciphers: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'OpenSSL cipher list, in the server\'s order of preference (the server\'s order is enforced). The default allows only ECDHE key exchange with AEAD ciphers (AES-GCM, ChaCha20-Poly1305) and the three TLS 1.3 suites.',
      }),
    ),
    http2: Type.Optional(
      Type.Boolean({
        description:
          'Offer HTTP/2 by ALPN, with HTTP/1.1 for clients that do not ask for it (default `false`). At most 100 concurrent streams per connection; the listener\'s timeouts apply per stream. Changing it needs a restart.',
      }),
    ),
  },
  { description: 'Certificate and TLS settings. Certificate, key, chain, versions and ciphers are re-read on reload (SIGHUP).' },
);

const Tls = Type.Union([Type.Literal('auto', { description: 'Development only: a self-signed certificate for localhost, generated into `dataDir`.' }), TlsFiles], {
  'x-expected': "'auto' or a mapping with cert and key",
  description:
    'Serve the gateway listener over HTTPS. `auto` (only with `mode: development`) generates a self-signed certificate for localhost, 127.0.0.1 and ::1 into `<dataDir>/tls/` and prints its fingerprint.',
});

const InsecureRequests = Strict(
  {
    action: StringEnum(['redirect', 'forbid', 'upgrade-required'] as const, {
      description:
        'What a plain-HTTP request to a route without `allowInsecure` gets: `redirect` (308 to the same path and query on https, method and body kept), `forbid` (403 `RMP_HTTPS_REQUIRED`) or `upgrade-required` (426 `RMP_HTTPS_UPGRADE_REQUIRED`). Requests no route matches get their 404/405 as usual.',
      default: 'redirect',
    }),
    redirectHost: Type.Optional(
      Type.String({
        pattern: '^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$',
        'x-expected': 'a lowercase host name',
        description: 'Host name the redirect points to. Without it, the request\'s own (validated) `Host` is used, and a request with no `Host` gets 403. Set it in production.',
      }),
    ),
    redirectPort: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 65535,
        description: 'Port the redirect points to. Default: the HTTPS listener\'s port when Rampart has one (`server.tls`), else 443 (a TLS-terminating load balancer).',
      }),
    ),
  },
  { description: 'Plain HTTP is never served to a route unless the route says `allowInsecure: true`. Requests count as HTTPS when they came over TLS, or when a trusted proxy says so in `X-Forwarded-Proto`.', default: {} },
);

const Server = Strict(
  {
    listen: Listen('0.0.0.0', 8080, 'the gateway'),
    tls: Type.Optional(Tls),
    http: Type.Optional(
      Strict(
        { listen: Listen('0.0.0.0', 8080, 'the plain-HTTP listener') },
        {
          description:
            'A second, plain-HTTP listener next to the HTTPS one (needs `server.tls`): it redirects to HTTPS (see `insecureRequests`) and serves only routes with `allowInsecure: true`.',
        },
      ),
    ),
    insecureRequests: InsecureRequests,
    trustedProxies: Type.Array(Type.String({ minLength: 1, description: 'An IP address or CIDR range.' }), {
      description:
        'Addresses of proxies in front of Rampart (IPs or CIDR ranges, or `loopback`, `linklocal`, `uniquelocal`). `X-Forwarded-For`, `-Proto` and `-Host` are believed only from these; from anyone else they are replaced.',
      default: [],
    }),
    timeouts: ServerTimeouts,
    maxConnectionsPerIp: Type.Integer({
      minimum: 0,
      maximum: 1_000_000,
      description:
        'Most open connections one client address may hold (`0`: no limit). Past it, a new connection gets 429 `RMP_TOO_MANY_CONNECTIONS` and is closed. Trusted proxies are exempt.',
      default: 256,
    }),
    overload: Strict(
      {
        maxEventLoopDelay: Duration({
          description: 'Shed every new request with 503 `RMP_OVERLOADED` while the event loop lags more than this (sampled once per threshold, between 100 ms and 1 s): latency stays bounded instead of every request waiting. `0s` turns it off.',
          default: '1s',
        }),
        maxHeapUsed: Type.Optional(Size({ description: 'Also shed while the V8 heap in use is above this size.' })),
        maxRss: Type.Optional(Size({ description: 'Also shed while the process\'s resident memory is above this size.' })),
        retryAfter: Duration({ description: '`Retry-After` on the 503.', default: '5s' }),
      },
      { description: 'Process-wide load shedding (with `@fastify/under-pressure`). Changing it needs a restart.', default: {} },
    ),
    tracing: Type.Boolean({
      description:
        'W3C Trace Context: the upstream gets a `traceparent` continuing the client\'s trace (same trace id and sampled flag, the gateway\'s span as parent) or starting one (flags `01`); a malformed one is replaced, and `tracestate` goes along only with a valid `traceparent` (well-formed, at most 512 bytes). The access log records the `traceId`. `false` forwards both headers as the client sent them.',
      default: true,
    }),
    drainTimeout: Duration({
      description: 'On SIGTERM/SIGINT, how long requests in flight may take to finish before connections are closed.',
      default: '30s',
    }),
  },
  { description: 'The gateway listener.', default: {} },
);

const Admin = Strict(
  {
    enabled: Type.Boolean({ description: 'Serve the admin listener: `/healthz`, `/readyz`, `/metrics` (Prometheus text format; every label bounded: route, limit and policy names, methods, status classes, error codes, event types, store kinds), the admin API (`/api/…`, see docs/admin-api.md) and the console (`/`).', default: true }),
    listen: Listen('127.0.0.1', 9901, 'the admin listener'),
    tls: Type.Boolean({
      description: 'Serve the admin listener over HTTPS with the gateway\'s certificate and TLS settings (`server.tls`). Required when `listen.host` is not a loopback address: the admin API and console carry credentials.',
      default: false,
    }),
    token: Type.Optional(
      Type.String({
        pattern: '^[A-Za-z0-9._~+/=-]{32,1024}$',
        'x-expected': 'a token of 32 to 1024 letters, digits or ._~+/=- (openssl rand -base64 32)',
        description: 'A bearer token that grants the admin API (`Authorization: Bearer …`, or once at the console\'s login), for the CLI, scripts and gateways without the identity service. Give it as `${RAMPART_ADMIN_TOKEN}` or `${file:…}`; it is kept only as a hash and never shown.',
      }),
    ),
    role: Type.String({ minLength: 1, description: 'The identity service\'s role that may use the admin API and console.', default: 'admin' }),
    session: Strict(
      {
        ttl: Duration({ description: 'How long a console session lasts at most.', default: '8h' }),
        idleTimeout: Duration({ description: 'A console session ends after this long without a request.', default: '30m' }),
      },
      { description: 'Console sessions (cookie `__Host-rampart-admin`: HttpOnly, Secure, SameSite=Strict; changes need the `X-CSRF-Token` header).', default: {} },
    ),
    events: Strict(
      {
        ring: Type.Integer({ minimum: 100, maximum: 1_000_000, description: 'Security events kept in memory for the live views (and for `/api/events` when the gateway has no database).', default: 10_000 }),
      },
      { description: 'Security events as the admin API and console see them.', default: {} },
    ),
  },
  { description: 'The admin listener. Keep it on a private address: plain HTTP is allowed only on loopback.', default: {} },
);

const RedisConfig = Strict(
  {
    url: Type.String({
      pattern: '^rediss?://',
      'x-expected': 'a redis:// or rediss:// URL',
      description: 'Redis server, e.g. `redis://127.0.0.1:6379/0` (`rediss://` for TLS). A password belongs in `${file:…}` or `${ENV}`, not in this file.',
    }),
    keyPrefix: Type.String({ pattern: '^[A-Za-z0-9:_.-]{0,64}$', 'x-expected': 'letters, digits, ":", "_", "." or "-"', description: 'Prefix of every key Rampart writes.', default: 'rampart:' }),
    connectTimeout: Duration({ description: 'Time allowed to connect.', default: '2s' }),
    commandTimeout: Duration({ description: 'Time allowed for one command; past it the rate limit applies its `onStoreFailure` mode.', default: '250ms' }),
  },
  { description: 'Shared state for several Rampart processes or nodes (rate-limit counters). Without it, state is per process.' },
);

const Log = Strict(
  {
    level: StringEnum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const, {
      description: 'Lowest level written.',
      default: 'info',
    }),
    destination: Type.String({
      minLength: 1,
      description:
        '`stdout`, `stderr`, or a file path (relative to the config file) that JSON lines are appended to; its directory is created. Written asynchronously in batches, flushed at shutdown; SIGHUP reopens it (for an external logrotate). A path that cannot be opened is a start error.',
      default: 'stdout',
    }),
    rotate: Type.Optional(
      Strict(
        {
          maxSize: Size({ description: 'Rotate once the file has reached this size (it exceeds it by at most one batched write, 16 KiB; lines are never split).', default: '100MiB' }),
          maxFiles: Type.Integer({
            minimum: 1,
            maximum: 1000,
            description: 'Rotated files kept besides the current one: `<file>.1` (newest) … `<file>.<maxFiles>` (oldest); the oldest is deleted at each rotation.',
            default: 10,
          }),
          interval: Type.Optional(Duration({ description: 'Also rotate this often (e.g. `1d`), unless the file is empty.' })),
        },
        {
          description:
            'Rotate a file `destination` by size (and optionally by time): the file is renamed `<file>.1`, older ones shift up to `<file>.<maxFiles>`; no line is split or lost. Leave it out when an external logrotate (which sends SIGHUP) rotates the file.',
        },
      ),
    ),
  },
  { description: 'Structured JSON logs: the access log, security events and errors share the one destination and the one redaction list.', default: {} },
);

const Target = Strict(
  {
    url: Type.String({
      pattern: '^https?://[^/?#\\s]+(/[^?#\\s]*)?$',
      'x-expected': 'an http:// or https:// URL with no query or fragment',
      description: 'Base URL of the target. A path here is prepended to every forwarded path.',
    }),
  },
  { description: 'One server of the upstream.' },
);

const Upstream = Strict(
  {
    targets: Type.Array(Target, { minItems: 1, description: 'Servers to balance across, round-robin.' }),
    host: Type.String({
      minLength: 1,
      description:
        '`Host` sent upstream: `target` (the target URL\'s host), `preserve` (the client\'s), or a literal host name.',
      default: 'target',
    }),
    timeouts: Strict(
      {
        connect: Duration({ description: 'Time to establish a connection (→ 504 `RMP_UPSTREAM_TIMEOUT`).', default: '5s' }),
        headers: Duration({
          description: 'Time from sending the request to receiving the response headers (→ 504).',
          default: '30s',
        }),
        body: Duration({
          description: 'Longest silence while the response body streams; past it the response is cut off.',
          default: '30s',
        }),
      },
      { description: 'Upstream timeouts.', default: {} },
    ),
    maxInFlight: Type.Integer({
      minimum: 0,
      maximum: 1_000_000,
      description:
        'Most requests in flight to this upstream at once (`0`: no limit). Past it, requests are shed at once with 503 `RMP_OVERLOADED` and `Retry-After: 1` rather than queued.',
      default: 1000,
    }),
    retries: Type.Integer({
      minimum: 0,
      maximum: 5,
      description:
        'Further attempts, on another target when there is one, after a connection error. Only for idempotent methods without a request body.',
      default: 1,
    }),
    pool: Strict(
      {
        connections: Type.Integer({ minimum: 1, maximum: 4096, description: 'Most connections kept per target.', default: 128 }),
        keepAliveTimeout: Duration({ description: 'How long an idle upstream connection is kept.', default: '4s' }),
      },
      { description: 'Keep-alive connection pool per target.', default: {} },
    ),
    openapi: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'The service\'s OpenAPI 3.0 or 3.1 document (YAML or JSON, relative to the config file): every route to this upstream validates requests against it and allowlists answers by it (the `openapi` policy; a route may name another with `openapi.spec`, or say `openapi: false`).',
      }),
    ),
    passiveHealth: Strict(
      {
        failures: Type.Integer({
          minimum: 1,
          maximum: 1000,
          description: 'Consecutive failures (connection refused or reset, timeouts) after which a target\'s circuit opens: nothing is sent to it for `cooldown`, then one probe request decides. When every target is open, 503 `RMP_UPSTREAM_CIRCUIT_OPEN` at once.',
          default: 3,
        }),
        cooldown: Duration({ description: 'How long an open circuit stays open before one probe request is let through (half-open).', default: '10s' }),
      },
      { description: 'Circuit breaker per target: skip targets that keep failing, probe them again after the cooldown.', default: {} },
    ),
  },
  { description: 'A named upstream service.' },
);

const Route = Strict(
  {
    name: Type.String({ pattern: NAME_PATTERN, 'x-expected': NAME_EXPECTED, description: 'Unique route name, used in logs and metrics.' }),
    match: Strict(
      {
        path: Type.String({
          pattern: '^/',
          'x-expected': 'a path starting with "/"',
          description:
            'Path pattern: literal segments, `:name` parameters and a trailing `*` wildcard (`/api/notes/:id`, `/static/*`).',
        }),
        methods: Type.Array(StringEnum(HTTP_METHODS, { description: 'An HTTP method.' }), {
          minItems: 1,
          uniqueItems: true,
          description: 'Methods this route serves. TRACE, TRACK and CONNECT are refused everywhere.',
          default: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'],
        }),
        host: Type.Optional(
          Type.String({
            pattern: '^(\\*\\.)?[a-z0-9]([a-z0-9.-]*[a-z0-9])?$',
            'x-expected': 'a lowercase host name, optionally starting with "*."',
            description: 'Only match this `Host` (port ignored); `*.example.com` matches one label.',
          }),
        ),
      },
      { description: 'What requests this route takes. The most specific path wins: literal, then parameter, then wildcard.' },
    ),
    upstream: Type.Optional(Type.String({ minLength: 1, description: 'Name of the upstream (under `upstreams`) requests are forwarded to.' })),
    stripPrefix: Type.Optional(
      Type.String({ pattern: '^/.*[^/]$', 'x-expected': 'a path starting with "/" and not ending with "/"', description: 'Literal prefix removed from the path before forwarding.' }),
    ),
    rewrite: Type.Optional(
      Type.String({
        pattern: '^/',
        'x-expected': 'a path starting with "/"',
        description: 'Forwarded path template using the match\'s `:name` parameters and `*` (`/v2/notes/:id`). Replaces `stripPrefix`.',
      }),
    ),
    version: Type.Optional(
      Type.String({
        pattern: NAME_PATTERN,
        'x-expected': NAME_EXPECTED,
        description:
          'The API version this route belongs to (a name under `versions`): its deprecation and sunset headers, its 410 after the sunset, and for versions with `select`, the request header or `Accept` parameter that routes to it.',
      }),
    ),
    successorPath: Type.Optional(
      Type.String({
        pattern: '^/[A-Za-z0-9._~:/-]*\\*?$',
        'x-expected': 'a path starting with "/", using the match\'s :name parameters and *',
        description:
          'Where this route\'s successor lives, for the `Link: <…>; rel="successor-version"` header, using the match\'s `:name` parameters and its trailing `*` (`/api/v2/people/:id`). Without it, the successor path is derived from the versions\' `prefix`es (or is the same path, for versions chosen by `select`).',
      }),
    ),
    public: Type.Boolean({
      description:
        'The route takes no authentication at all (authentication policies from `defaults` are skipped). A route with no authentication policy must say so: otherwise the config is refused, so no API is open by accident.',
      default: false,
    }),
    allowInsecure: Type.Boolean({
      description:
        'Serve this route over plain HTTP too (without it, plain-HTTP requests are redirected or refused, see `server.insecureRequests`). Anything sent over plain HTTP can be read and changed on the way: `rampart validate` warns about every route that sets it.',
      default: false,
    }),
    policies: Type.Record(Type.String(), Type.Unknown({ description: 'Options of the policy named by the key, or `false`.' }), {
      description: 'Per-policy overrides of `defaults`: an object merges into the default options, `false` disables the policy.',
      default: {},
    }),
  },
  { description: 'A route: match → policies → upstream.' },
);

export const ConfigSchema = Strict(
  {
    mode: StringEnum(['production', 'development'] as const, {
      description: '`development` allows conveniences that are unsafe in production (each announced loudly at start).',
      default: 'production',
    }),
    dataDir: Type.String({ minLength: 1, description: 'Directory for state files (relative to the config file).', default: './data' }),
    watch: Type.Boolean({ description: 'Reload when the config file changes (SIGHUP always reloads).', default: false }),
    server: Server,
    admin: Admin,
    storage: Strict(
      {
        url: Type.String({
          pattern: '^(sqlite:.+|postgres(ql)?://.+)$',
          'x-expected': 'sqlite:<path> or postgres://…',
          description: '`sqlite:<path>` (relative to the config file; the embedded default, one node) or `postgres://user@host/db` (shared by every node). Migrated by `rampart migrate` and at start by the features that use it.',
          default: 'sqlite:./data/rampart.db',
        }),
      },
      { description: 'The database: users, keys, audit events (as the features that need it land).', default: {} },
    ),
    redis: Type.Optional(RedisConfig),
    identity: Type.Optional(IdentitySchema),
    log: Log,
    alerts: AlertsSchema,
    // additionalProperties: a name-keyed record otherwise skips every key that breaks the pattern
    // (regression test config-map-keys-skip-validation).
    upstreams: Type.Record(Type.String({ pattern: NAME_PATTERN }), Upstream, {
      additionalProperties: false,
      description: 'Upstream services by name.',
      default: {},
    }),
    defaults: Type.Record(Type.String(), Type.Unknown({ description: 'Options of the policy named by the key, or `false`.' }), {
      description: 'Policy options applied to every route, by policy name. `false` turns off a policy that is on by default.',
      default: {},
    }),
    versions: Type.Record(Type.String({ pattern: NAME_PATTERN }), VersionSchema, {
      additionalProperties: false,
      description: 'API versions by name, for routes to name in `version` (see the `versioning` policy).',
      default: {},
    }),
    routes: Type.Array(Route, { description: 'Routes, matched most specific first.', default: [] }),
  },
  { description: 'rampart.yaml' },
);

export type RampartConfig = Static<typeof ConfigSchema>;
export type RouteConfig = Static<typeof Route>;
export type UpstreamConfig = Static<typeof Upstream>;
