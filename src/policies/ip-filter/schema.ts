import { Type, type Static } from '@sinclair/typebox';
import { Strict } from '../../config/types.js';

const Range = Type.String({ minLength: 1, description: 'An IPv4 or IPv6 address or CIDR range (`10.0.0.0/8`, `2001:db8::/32`), or `loopback`, `linklocal`, `uniquelocal`.' });

export const IpFilterSchema = Strict(
  {
    allow: Type.Array(Range, { description: 'When not empty, only clients in these ranges are served.', default: [] }),
    deny: Type.Array(Range, { description: 'Clients in these ranges are refused (checked before `allow`).', default: [] }),
  },
  { description: 'Allow and deny lists on the client address (as the trusted-proxy rules determine it).', default: {} },
);

export type IpFilterOptions = Static<typeof IpFilterSchema>;
