import { Type, type Static } from '@sinclair/typebox';
import { Duration, Strict, StringEnum } from '../../config/types.js';

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
    realm: Type.String({ pattern: '^[\\x20-\\x21\\x23-\\x5b\\x5d-\\x7e]{1,64}$', 'x-expected': 'printable text without quotes or backslashes', description: '`realm` in `WWW-Authenticate`.', default: 'rampart' }),
    scopesClaim: Type.String({ minLength: 1, description: 'Member holding the scopes.', default: 'scope' }),
    rolesClaim: Type.String({ minLength: 1, description: 'Member holding the roles (a list).', default: 'roles' }),
    anonymous: Type.Boolean({ description: 'Credentials optional.', default: false }),
    hideCredentials: Type.Boolean({ description: 'Remove `Authorization` before forwarding.', default: true }),
  },
  { description: 'Opaque bearer tokens checked with RFC 7662 token introspection.' },
);

export type IntrospectionOptions = Static<typeof IntrospectionSchema>;
