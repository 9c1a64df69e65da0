import { Type, type Static } from '@sinclair/typebox';
import { Duration, Strict } from '../../config/types.js';

export const ConcurrencySchema = Strict(
  {
    max: Type.Integer({ minimum: 1, maximum: 1_000_000, description: 'Most requests of this route in flight at once; the next is answered 503 `RMP_OVERLOADED` at once, never queued.' }),
    retryAfter: Duration({ description: '`Retry-After` on the 503.', default: '1s' }),
  },
  { description: 'Load shedding: a cap on the requests of a route in flight at once.' },
);

export type ConcurrencyOptions = Static<typeof ConcurrencySchema>;
