import { definePolicy } from '../define.js';
import { compileLimits, writeRateLimitHeaders } from '../rate-limit/limits.js';
import { IpRateLimitSchema } from './schema.js';

/**
 * The per-client-address limit before authentication, on by default (600 per minute). One
 * counter per address across every route (the limit is named `ip`).
 */
export const ipRateLimitPolicy = definePolicy({
  name: 'ip-rate-limit',
  phase: 'rate-limit-pre',
  enabledByDefault: true,
  description: 'Per-client-address limit before authentication (600 per minute by default); 429 `RMP_RATE_LIMITED` with `Retry-After`.',
  schema: IpRateLimitSchema,
  create(options, ctx) {
    const { headers, ...limit } = options;
    // Routes with the same settings share one counter per address (counters are named by their
    // settings); a route with its own settings counts separately.
    const engine = compileLimits([{ ...limit, name: 'ip', key: ['ip'] }], headers, ctx);
    return { request: engine.request, response: writeRateLimitHeaders };
  },
});
