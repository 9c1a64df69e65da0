import { definePolicy } from '../define.js';
import { compileLimits, writeRateLimitHeaders } from './limits.js';
import { RateLimitSchema } from './schema.js';

/** Limits after authentication: per consumer, API key, route, header or client address. */
export const rateLimitPolicy = definePolicy({
  name: 'rate-limit',
  phase: 'rate-limit',
  description: 'Rate limits after authentication (per consumer, API key, route, header or client address); 429 `RMP_RATE_LIMITED` with `Retry-After` and the IETF `RateLimit` headers.',
  schema: RateLimitSchema,
  create(options, ctx) {
    const limits = options.limits.map((l, i) => ({ ...l, name: l.name ?? `${ctx.route}.${i}` }));
    const engine = compileLimits(limits, options.headers, ctx);
    return { request: engine.request, response: writeRateLimitHeaders };
  },
});
