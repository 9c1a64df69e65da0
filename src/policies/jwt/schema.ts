import { Type, type Static } from '@sinclair/typebox';
import { Duration, Strict, StringEnum } from '../../config/types.js';
import { bearerFields } from '../authn.js';

export const ASYMMETRIC_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;
export const HMAC_ALGORITHMS = ['HS256', 'HS384', 'HS512'] as const;

const StringOrList = (description: string) =>
  Type.Union([Type.String({ minLength: 1, description }), Type.Array(Type.String({ minLength: 1, description: 'One accepted value.' }), { minItems: 1, description })], {
    'x-expected': 'a string or a list of strings',
    description,
  });

export const JwtSchema = Strict(
  {
    identity: Type.Boolean({
      description:
        'Accept the access tokens of the built-in identity service (`identity:` section): its keys, issuer, audience, `typ: at+jwt` and revocations, checked in process. Replaces `jwksUrl`/`publicKeys`/`secret`; `algorithms`, `issuer` and `audience` then default to the service\'s.',
      default: false,
    }),
    algorithms: Type.Optional(Type.Array(StringEnum([...ASYMMETRIC_ALGORITHMS, ...HMAC_ALGORITHMS] as const, { description: 'A JWS algorithm.' }), {
      minItems: 1,
      uniqueItems: true,
      description: 'Algorithms accepted (required unless `identity`; `none` never is). HMAC algorithms only with `secret`, the others only with `jwksUrl` or `publicKeys`.',
    })),
    jwksUrl: Type.Optional(Type.String({ pattern: '^https?://', 'x-expected': 'an http(s):// URL', description: 'The issuer\'s JWKS (`https://issuer/.well-known/jwks.json`).' })),
    publicKeys: Type.Optional(
      Type.Array(Type.String({ minLength: 1, description: 'A PEM public key or certificate, or a JWK as JSON (use `${file:…}`).' }), { minItems: 1, description: 'Static public keys.' }),
    ),
    secret: Type.Optional(Type.String({ minLength: 32, description: 'HMAC secret, at least 32 bytes (use `${file:…}` or `${ENV}`).' })),
    issuer: Type.Optional(StringOrList('Accepted `iss` value(s) (required unless `identity`).')),
    audience: Type.Optional(StringOrList('Accepted `aud` value(s) (required unless `identity`).')),
    typ: Type.Optional(Type.String({ minLength: 1, description: 'Required `typ` header, e.g. `at+jwt` (RFC 9068).' })),
    clockSkew: Duration({ description: 'Tolerance for `exp`, `nbf` and `iat` (at most 5m).', default: '30s' }),
    jwks: Strict(
      {
        refresh: Duration({ description: 'How long fetched keys are used before they are fetched again.', default: '10m' }),
        cooldown: Duration({ description: 'At most one fetch per this interval because of an unknown `kid` (a flood of made-up `kid`s costs one fetch).', default: '30s' }),
        timeout: Duration({ description: 'Time allowed for a fetch.', default: '5s' }),
        staleIfError: Duration({ description: 'How long the last keys are still used while the JWKS cannot be fetched; past it, 503 `RMP_AUTH_UNAVAILABLE`.', default: '1h' }),
      },
      { description: 'Fetching `jwksUrl`.', default: {} },
    ),
    cacheSize: Type.Integer({ minimum: 0, maximum: 1_000_000, description: 'Verified tokens remembered (never past their `exp`), so a repeated token skips signature checks; revocation is still checked every time. `0` turns it off.', default: 10_000 }),
    revocation: StringEnum(['auto', 'memory', 'redis'] as const, { description: 'Where revocations are looked up: `redis` (shared; needs the top-level `redis`), `memory`, or `auto`.', default: 'auto' }),
    ...bearerFields(),
  },
  { description: 'Bearer JWT authentication.' },
);

export type JwtOptions = Static<typeof JwtSchema>;
