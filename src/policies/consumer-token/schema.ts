import { Type, type Static } from '@sinclair/typebox';
import { Duration, Strict, StringEnum } from '../../config/types.js';

export const ConsumerTokenSchema = Strict(
  {
    privateKey: Type.String({ minLength: 1, description: 'PEM private key the gateway signs with (use `${file:…}`); upstreams verify with its public key.' }),
    algorithm: StringEnum(['ES256', 'ES384', 'RS256', 'PS256', 'EdDSA'] as const, { description: 'Signature algorithm (must fit the key).', default: 'ES256' }),
    keyId: Type.Optional(Type.String({ pattern: '^[\\x21-\\x7e]{1,64}$', 'x-expected': 'printable text without spaces', description: '`kid` of the signing key.' })),
    issuer: Type.String({ minLength: 1, description: '`iss` of the tokens.', default: 'rampart' }),
    audience: Type.String({ minLength: 1, description: '`aud`: the upstream service.' }),
    ttl: Duration({ description: 'Lifetime of each token (short: upstreams reject it soon after).', default: '60s' }),
    header: Type.String({ pattern: '^[a-z0-9-]{1,64}$', 'x-expected': 'a lowercase header name', description: 'Request header carrying the token to the upstream.', default: 'x-consumer-token' }),
  },
  { description: 'Passes the authenticated consumer to the upstream as a short-lived JWT signed by the gateway.' },
);

export type ConsumerTokenOptions = Static<typeof ConsumerTokenSchema>;
