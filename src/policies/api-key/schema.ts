import { Type, type Static } from '@sinclair/typebox';
import { Strict, StringEnum } from '../../config/types.js';

const Key = Strict(
  {
    id: Type.String({ pattern: '^[A-Za-z0-9._-]{1,64}$', 'x-expected': 'letters, digits, ".", "_" or "-"', description: 'The key\'s id (logs, `X-Consumer-Key`, revocation); not secret.' }),
    hash: Type.String({
      pattern: '^sha256:[0-9a-f]{64}$',
      'x-expected': 'sha256: followed by 64 lowercase hex digits',
      description: 'SHA-256 of the key, `sha256:<hex>` (`printf %s "$KEY" | sha256sum`). The key itself is never in the config.',
    }),
    consumer: Type.Optional(Type.String({ pattern: '^[\\x21-\\x7e]{1,128}$', 'x-expected': 'printable text without spaces', description: 'Consumer id the key acts as (default `apikey:<id>`).' })),
    scopes: Type.Array(Type.String({ minLength: 1, description: 'A scope.' }), { description: 'Scopes the key grants.', default: [] }),
    roles: Type.Array(Type.String({ minLength: 1, description: 'A role.' }), { description: 'Roles the key grants.', default: [] }),
  },
  { description: 'One API key.' },
);

export const ApiKeySchema = Strict(
  {
    header: Type.String({ pattern: '^[a-z0-9-]{1,64}$', 'x-expected': 'a lowercase header name', description: 'Request header carrying the key; it is never forwarded.', default: 'x-api-key' }),
    keys: Type.Optional(Type.Array(Key, { minItems: 1, description: 'Accepted keys, by hash (or `identity: true`).' })),
    identity: Type.Boolean({
      description:
        'Accept the API keys of the built-in identity service (`rmp_<env>_…`, made with `POST /api/v1/api-keys` or `rampart apikeys create`): looked up by HMAC, acting as their owner with the key\'s scopes, refused once expired or revoked. Replaces `keys`.',
      default: false,
    }),
    revocation: StringEnum(['auto', 'memory', 'redis'] as const, { description: 'Where key revocations are looked up (by key id).', default: 'auto' }),
    anonymous: Type.Boolean({ description: 'Credentials optional: a request without the header goes on without a consumer.', default: false }),
  },
  { description: 'API key authentication (keys held as SHA-256 hashes).' },
);

export type ApiKeyOptions = Static<typeof ApiKeySchema>;
