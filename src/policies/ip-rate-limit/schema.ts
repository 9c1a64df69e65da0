import { type Static } from '@sinclair/typebox';
import { Strict, StringEnum } from '../../config/types.js';
import { limitFields } from '../rate-limit/schema.js';

export const IpRateLimitSchema = Strict(
  {
    ...limitFields({ limit: 600, window: '1m' }),
    headers: StringEnum(['all', 'limited', 'none'] as const, {
      description: '`RateLimit-Policy` and `RateLimit` on every response (`all`), only on 429s (`limited`), or never (`none`).',
      default: 'limited',
    }),
  },
  {
    description: 'The per-client-address limit that runs before authentication (so it also protects login and token checks). Counters are shared by every route.',
    default: {},
  },
);

export type IpRateLimitOptions = Static<typeof IpRateLimitSchema>;
