import { Type, type Static } from '@sinclair/typebox';
import { Duration, Strict, StringEnum } from '../../config/types.js';

/** Fields every limit has, in both rate-limit policies. */
export const limitFields = (defaults: { limit?: number; window?: string }) => ({
  algorithm: StringEnum(['gcra', 'sliding-window', 'fixed-window'] as const, {
    description:
      '`gcra`: smooth, one request per window/limit on average with up to `burst` at once. `sliding-window`: about `limit` per sliding window (the previous window\'s count weighted by its overlap: exact within a window, an estimate across the boundary). `fixed-window`: at most `limit` per calendar window.',
    default: 'gcra',
  }),
  limit: Type.Integer({ minimum: 1, maximum: 1_000_000_000, description: 'Requests allowed per window (`q` in `RateLimit-Policy`).', ...(defaults.limit !== undefined ? { default: defaults.limit } : {}) }),
  window: Duration({ description: 'The window (`w`).', ...(defaults.window !== undefined ? { default: defaults.window } : {}) }),
  burst: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000_000, description: '`gcra` only: how many may arrive at once (default: `limit`).' })),
  store: StringEnum(['auto', 'memory', 'redis'] as const, {
    description: 'Where counters live: `redis` (shared by every process and node; needs the top-level `redis`), `memory` (this process), `auto` (Redis when configured).',
    default: 'auto',
  }),
  onStoreFailure: StringEnum(['open', 'closed'] as const, {
    description: 'When Redis cannot be reached: `open` counts in this process meanwhile (logged, counted), `closed` answers 503 `RMP_RATE_LIMIT_UNAVAILABLE`. Either recovers by itself when Redis is back.',
    default: 'open',
  }),
});

export const KEY_PATTERN = '^(ip|consumer|apiKey|route|header:[a-z0-9-]{1,64})$';

const Limit = Strict(
  {
    name: Type.Optional(
      Type.String({
        pattern: '^[a-z0-9][a-z0-9._-]{0,63}$',
        'x-expected': 'a name of lowercase letters, digits, ".", "_" or "-"',
        description: 'Name in the `RateLimit` headers and of the counters: limits with the same name and the same settings share counts (on several routes, say). Default: `<route>.<index>`.',
      }),
    ),
    key: Type.Array(Type.String({ pattern: KEY_PATTERN, 'x-expected': 'ip, consumer, apiKey, route or header:<name>', description: 'A part of the key.' }), {
      minItems: 1,
      uniqueItems: true,
      description: 'What is counted separately: `ip` (the client address), `consumer` and `apiKey` (after authentication; the client address when there is none), `route`, `header:<name>`, or several.',
      default: ['consumer'],
    }),
    ...limitFields({}),
  },
  { description: 'One limit.' },
);

export const RateLimitSchema = Strict(
  {
    limits: Type.Array(Limit, { minItems: 1, description: 'The limits; a request must pass every one (for example 10 per second and 10 000 per day).' }),
    headers: StringEnum(['all', 'limited', 'none'] as const, {
      description: '`RateLimit-Policy` and `RateLimit` on every response (`all`), only on 429s (`limited`), or never (`none`).',
      default: 'all',
    }),
  },
  { description: 'Rate limits after authentication (per consumer, API key, route, header, client address).' },
);

export type RateLimitOptions = Static<typeof RateLimitSchema>;
