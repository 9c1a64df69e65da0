import { Type, type Static } from '@sinclair/typebox';
import { Duration, Strict, StringEnum } from '../config/types.js';
import { DeprecationLink, Deprecated, Sunset } from '../policies/versioning/schema.js';

const PerIp = (what: string, limit: number, window: string) =>
  Strict(
    {
      limit: Type.Integer({ minimum: 1, maximum: 1_000_000, description: `${what} allowed per client IP address per window.`, default: limit }),
      window: Duration({ description: 'The window the limit counts over.', default: window }),
    },
    { description: `Per-IP limit on ${what} (429 with \`Retry-After\` past it; counted in Redis when configured).`, default: {} },
  );

/** `identity:` in rampart.yaml — the built-in identity service. */
export const IdentitySchema = Strict(
  {
    enabled: Type.Boolean({ description: 'Serve the identity service (login, refresh, users API, JWKS) on the gateway listener.', default: true }),
    issuer: Type.String({
      pattern: '^https://[^\\s/?#@]+$',
      'x-expected': 'an https:// origin without a path, e.g. https://api.example.com',
      description: 'The `iss` of every token issued: the public HTTPS origin of this gateway (`https://api.example.com`), where `/.well-known/jwks.json` and the metadata are served.',
    }),
    audience: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 512, description: 'An audience value.' }), {
        minItems: 1,
        uniqueItems: true,
        description: 'The `aud` of access tokens (the APIs behind this gateway). Default: the issuer.',
      }),
    ),
    clientId: Type.String({ pattern: '^[A-Za-z0-9._-]{1,128}$', 'x-expected': 'letters, digits, ".", "_" or "-"', description: 'The `client_id` claim of tokens from first-party login.', default: 'rampart' }),
    masterKey: Type.Optional(
      Type.String({
        minLength: 40,
        description:
          'Base64 of 32 or more random bytes that encrypts private signing keys at rest (`${RAMPART_MASTER_KEY}` or `${file:/run/secrets/rampart-master-key}`). Required in production; development generates `<dataDir>/master.key` with a warning.',
      }),
    ),
    previousMasterKeys: Type.Optional(
      Type.Array(Type.String({ minLength: 40, description: 'Base64 of a master key being rotated away from.' }), {
        maxItems: 4,
        description:
          'Master keys being rotated away from: they still decrypt what was encrypted under them, never encrypt. Set the new key as `masterKey` and the old one here on every node, run `rampart keys rotate-master`, then remove it (docs/identity.md, "Rotating the master key").',
      }),
    ),
    registration: StringEnum(['open', 'invite', 'off'] as const, {
      description: '`open`: anyone may register (202 whether or not the e-mail exists); `invite`: only with an invitation an admin created; `off`: accounts are created by admins only.',
      default: 'off',
    }),
    scopes: Type.Record(Type.String({ pattern: '^[a-z][a-z0-9_-]{0,63}$' }), Type.Array(Type.String({ pattern: '^[\\x21\\x23-\\x5b\\x5d-\\x7e]{1,128}$', description: 'A scope.' }), { description: 'Scopes of the role.' }), {
      additionalProperties: false,
      'x-expected': 'a role name of lowercase letters, digits, "_" or "-", starting with a letter',
      description: 'Scopes granted in the access token by role (`user: [notes:read, notes:write]`); a user gets the union over their roles.',
      default: {},
    }),
    passwords: Strict(
      {
        minLength: Type.Integer({ minimum: 8, maximum: 256, description: 'Shortest password accepted, in characters (code points). 12 or more is suggested.', default: 12 }),
        argon2: Strict(
          {
            memoryCost: Type.Integer({ minimum: 19_456, maximum: 4_194_304, description: 'Argon2id memory in KiB (at least 19456).', default: 19_456 }),
            timeCost: Type.Integer({ minimum: 2, maximum: 20, description: 'Argon2id iterations (at least 2).', default: 2 }),
            parallelism: Type.Integer({ minimum: 1, maximum: 16, description: 'Argon2id lanes.', default: 1 }),
          },
          { description: 'Argon2id parameters; hashes weaker than these are upgraded at the next login.', default: {} },
        ),
        maxConcurrentHashes: Type.Integer({ minimum: 1, maximum: 64, description: 'Argon2 computations at once (each uses `memoryCost` KiB and a thread); more wait in a bounded queue, past which 503.', default: 2 }),
      },
      { description: 'Password rules and hashing.', default: {} },
    ),
    tokens: Strict(
      {
        algorithm: StringEnum(['EdDSA', 'ES256'] as const, { description: 'Signature algorithm of access tokens.', default: 'EdDSA' }),
        accessTtl: Duration({ description: 'Lifetime of access tokens (at most 1h).', default: '10m' }),
        refreshIdleTtl: Duration({ description: 'A refresh token not used for this long expires.', default: '7d' }),
        refreshAbsoluteTtl: Duration({ description: 'A login session (refresh-token family) ends this long after login, however active.', default: '30d' }),
        reuseGrace: Duration({
          description:
            '`0s` (strict, the default): any second use of a refresh token revokes the whole family. A few seconds: concurrent uses within it get the same successor instead (for clients that race their own refreshes).',
          default: '0s',
        }),
      },
      { description: 'Access and refresh tokens.', default: {} },
    ),
    browser: Strict(
      {
        refreshCookie: Type.Boolean({
          description:
            'Browser mode: refresh tokens travel in a `__Host-rampart-refresh` cookie (HttpOnly, Secure, SameSite=Strict, path /; never forwarded to upstreams) instead of the JSON body, out of reach of scripts. Refresh then needs CSRF proof: the `X-CSRF-Token` header equal to the `__Host-rampart-csrf` cookie (double submit, compared in constant time), and an `Origin`, when sent, of the issuer or `origins`.',
          default: false,
        }),
        origins: Type.Array(Type.String({ pattern: '^https://[^/\\s]+$', 'x-expected': 'an https:// origin without a path', description: 'An origin.' }), {
          uniqueItems: true,
          description: 'Origins besides the issuer\'s allowed to refresh with the cookie (the web app\'s, when it is served from another host).',
          default: [],
        }),
      },
      { description: 'Refresh tokens for browser apps.', default: {} },
    ),
    keys: Strict(
      {
        rotateEvery: Duration({ description: 'How long a signing key signs before the next one takes over.', default: '30d' }),
        jwksMaxAge: Duration({ description: '`Cache-Control: max-age` of `/.well-known/jwks.json`; the next key is published at least this long before it signs.', default: '10m' }),
        refresh: Duration({ description: 'How often each node re-reads the keys from the database (rotation or revocation on another node), 1s to 1m.', default: '30s' }),
      },
      { description: 'Signing keys: generated on first start, rotated on schedule.', default: {} },
    ),
    apiKeys: Strict(
      {
        environment: StringEnum(['live', 'test'] as const, {
          description: 'The `<env>` of keys made here (`rmp_live_…` or `rmp_test_…`): a gateway accepts only its own environment\'s keys, and secret scanners tell them apart.',
          default: 'live',
        }),
        defaultTtl: Duration({ description: 'Lifetime of a key when its creator gives none (every key expires).', default: '90d' }),
        maxTtl: Duration({ description: 'The longest lifetime a key may be given.', default: '365d' }),
        maxPerUser: Type.Integer({ minimum: 1, maximum: 1000, description: 'Live (unexpired, unrevoked) keys one user may hold.', default: 50 }),
        cacheTtl: Duration({
          description:
            'How long a gateway keeps a looked-up key before reading it again (1s to 5m). Revocation through the API or Redis is seen on the next request regardless; this bounds how late a change made elsewhere (the CLI without Redis, a role removed from the owner on another node) is seen.',
          default: '15s',
        }),
      },
      { description: 'API keys (`POST /api/v1/api-keys`, `rampart apikeys`), accepted by `api-key: { identity: true }`.', default: {} },
    ),
    clients: Strict(
      {
        tokenTtl: Type.Optional(
          Duration({ description: 'Lifetime of client credentials access tokens (1m to 1h), and the longest a client\'s own `tokenTtl` may be; retired signing keys stay published this long. Default: `tokens.accessTtl`.' }),
        ),
        secretOverlap: Duration({ description: 'How long a rotated-out client secret keeps working next to the new one, when the rotation names no overlap (at most 30d).', default: '1d' }),
      },
      { description: 'OAuth 2.0 clients (client credentials grant at `POST /oauth/token`), managed with `/api/v1/clients` and `rampart clients`.', default: {} },
    ),
    lockout: Strict(
      {
        threshold: Type.Integer({ minimum: 1, maximum: 100, description: 'Consecutive failed logins before the account is locked for a while.', default: 5 }),
        baseDelay: Duration({ description: 'First lock duration; doubled for each further failure.', default: '30s' }),
        maxDelay: Duration({ description: 'Longest temporary lock.', default: '1h' }),
        permanentAfter: Type.Integer({ minimum: 10, maximum: 10_000, description: 'Consecutive failures after which the account stays locked until an admin unlocks it or resets the password.', default: 100 }),
      },
      { description: 'Per-account lockout after failed logins (reset by a successful login).', default: {} },
    ),
    mfa: Strict(
      {
        issuer: Type.String({ pattern: '^[^:]{1,64}$', 'x-expected': 'a name of 1 to 64 characters without ":"', description: 'The name authenticator apps show for the account (the `issuer` of the otpauth URI and its label prefix).', default: 'Rampart' }),
        requireForRoles: Type.Array(Type.String({ pattern: '^[a-z][a-z0-9_-]{0,63}$', description: 'A role name.' }), {
          uniqueItems: true,
          description: 'Roles whose accounts must use TOTP: a login with a role listed here and no TOTP yet must enrol before it gets a session (`[admin]`, say).',
          default: [],
        }),
        lockout: Strict(
          {
            threshold: Type.Integer({ minimum: 1, maximum: 100, description: 'Consecutive wrong codes (TOTP or recovery) before the second factor is locked for a while; counted apart from the password\'s failures.', default: 5 }),
            baseDelay: Duration({ description: 'First lock duration; doubled for each further wrong code.', default: '30s' }),
            maxDelay: Duration({ description: 'Longest temporary lock.', default: '15m' }),
            permanentAfter: Type.Integer({
              minimum: 10,
              maximum: 100,
              description: 'Consecutive wrong codes after which the second factor stays locked until an admin resets it (`DELETE /api/v1/users/{id}/mfa`); NIST SP 800-63B allows at most 100.',
              default: 100,
            }),
          },
          { description: 'Per-account lockout after wrong second-factor codes (reset by a right one).', default: {} },
        ),
      },
      { description: 'Multi-factor authentication: TOTP (RFC 6238) with single-use recovery codes.', default: {} },
    ),
    limits: Strict(
      {
        login: PerIp('login attempts', 20, '1m'),
        register: PerIp('registrations', 10, '1h'),
        refresh: PerIp('refreshes', 60, '1m'),
        clientAuth: Strict(
          {
            limit: Type.Integer({ minimum: 1, maximum: 1_000_000, description: 'Failed client authentications allowed per client id and client address per window.', default: 10 }),
            window: Duration({ description: 'The window the limit counts over.', default: '1m' }),
          },
          {
            description:
              'Per-client limit on failed authentications at the OAuth endpoints, counted per client id and address (so naming a client from elsewhere cannot lock it out): past it, every attempt for that client from that address (right or wrong) is answered 429 with `Retry-After` until the window lets one more through.',
            default: {},
          },
        ),
        clientAuthIp: PerIp('failed client authentications', 30, '1m'),
      },
      { description: 'Per-IP rate limits on the authentication endpoints.', default: {} },
    ),
    usersApi: Strict(
      {
        v1: Strict(
          {
            deprecated: Type.Optional(Deprecated()),
            sunset: Type.Optional(Sunset()),
            link: Type.Optional(DeprecationLink()),
          },
          {
            description:
              'The lifecycle of `/api/v1/users` and `/api/v1/users/{id}`. They always announce their successor (`Link: </api/v2/users…>; rel="successor-version"`); they are deprecated, and later retired, only when you set the dates here. Applied on reload.',
            default: {},
          },
        ),
      },
      { description: 'Versions of the users API (`/api/v1/users`, and `/api/v2/users` with the v2 representation; see docs/identity.md).', default: {} },
    ),
    audit: Strict(
      {
        retention: Duration({ description: 'How long audit events are kept.', default: '365d' }),
        ipRetention: Duration({ description: 'How long client IP addresses are kept in audit events (then erased from them).', default: '30d' }),
      },
      { description: 'The audit table (the events module\'s database sink).', default: {} },
    ),
  },
  { description: 'The built-in identity service: login → short-lived JWT → refresh rotation → logout, users API, signing keys, audit trail.' },
);

export type IdentityConfig = Static<typeof IdentitySchema>;
