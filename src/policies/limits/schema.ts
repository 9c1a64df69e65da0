import { Type, type Static } from '@sinclair/typebox';
import { Size, Strict } from '../../config/types.js';

export const LimitsSchema = Strict(
  {
    body: Size({ description: 'Largest request body (→ 413). A declared `Content-Length` over it is refused before anything is read; a chunked body is counted as it streams.', default: '1MiB' }),
    url: Type.Integer({ minimum: 64, maximum: 65_536, description: 'Longest request target, path and query, in bytes (→ 414).', default: 8192 }),
    headers: Type.Integer({ minimum: 8, maximum: 1000, description: 'Most request header fields (→ 431). Their total size is capped at 16 KiB by the HTTP parser.', default: 100 }),
  },
  { description: 'Request size limits, checked before the request reaches any other policy or the upstream.', default: {} },
);

export type LimitsOptions = Static<typeof LimitsSchema>;
