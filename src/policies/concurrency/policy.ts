import { parseDuration } from '../../config/units.js';
import { RampartError } from '../../errors/problem.js';
import { definePolicy } from '../define.js';
import { ConcurrencySchema } from './schema.js';

/**
 * At most `max` requests of the route in flight (counted from this point until the response is
 * over); beyond it, 503 at once. It runs first among the transport policies, before bodies are read.
 */
export const concurrencyPolicy = definePolicy({
  name: 'concurrency',
  phase: 'transport',
  priority: 990,
  description: 'Caps the requests of a route in flight at once; beyond it, 503 `RMP_OVERLOADED` with `Retry-After` immediately (no queue).',
  schema: ConcurrencySchema,
  create(options) {
    const max = options.max;
    const retryAfter = String(Math.max(1, Math.ceil(parseDuration(options.retryAfter) / 1000)));
    let inflight = 0;
    const release = () => {
      inflight--;
    };
    return {
      request(ctx) {
        if (inflight >= max) {
          throw new RampartError('RMP_OVERLOADED', { detail: 'Too many requests in flight on this route.', headers: { 'retry-after': retryAfter } });
        }
        inflight++;
        ctx.addRelease(release);
      },
    };
  },
});
