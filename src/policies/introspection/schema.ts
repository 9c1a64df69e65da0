import { Type, type Static } from '@sinclair/typebox';
import { Duration, Strict, StringEnum } from '../../config/types.js';
import { bearerFields } from '../authn.js';

export const IntrospectionSchema = Strict(
  {
    endpoint: Type.String({ pattern: '^https?://', 'x-expected': 'an http(s):// URL', description: 'The authorization server\'s RFC 7662 introspection endpoint.' }),
    clientId: Type.String({ minLength: 1, description: 'Client id Rampart authenticates with.' }),
    clientSecret: Type.String({ minLength: 1, description: 'Client secret (use `${file:…}` or `${ENV}`).' }),
    clientAuth: StringEnum(['client_secret_basic', 'client_secret_post'] as const, { description: 'How the client authenticates to the endpoint.', default: 'client_secret_basic' }),
    cacheTtl: Duration({ description: 'How long an active answer is reused (never past the token\'s `exp`). `0s` asks every time.', default: '60s' }),
    negativeTtl: Duration({ description: 'How long an inactive answer is reused.', default: '10s' }),
    timeout: Duration({ description: 'Time allowed per introspection call; past it, 503 `RMP_AUTH_UNAVAILABLE` (fail closed).', default: '3s' }),
    audience: Type.Optional(Type.String({ minLength: 1, description: 'Required `aud` in the answer, when set.' })),
    ...bearerFields(),
  },
  { description: 'Opaque bearer tokens checked with RFC 7662 token introspection.' },
);

export type IntrospectionOptions = Static<typeof IntrospectionSchema>;
