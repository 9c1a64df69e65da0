import { decodeProtectedHeader, errors, jwtVerify, type JWTPayload } from 'jose';
import { parseDuration } from '../../config/units.js';
import { RampartError } from '../../errors/problem.js';
import type { Consumer, RequestContext } from '../../gateway/context.js';
import type { Revocation } from '../../revocation/revocation.js';
import { definePolicy, type IdentityLink } from '../define.js';
import { BEARER, bearerRefusal, repeatedAuthorization, setConsumer, tokenInQuery } from '../authn.js';
import { RemoteJwks, staticKeys, type KeyResolver } from './keys.js';
import { HMAC_ALGORITHMS, JwtSchema } from './schema.js';

interface Verified {
  consumer: Consumer;
  /** The JWKS generation it was verified with (remote keys). */
  keys: number;
  /** ms */
  exp: number;
  jti: string | undefined;
  sub: string | undefined;
  iat: number | undefined;
}

const KID = /^[\x21-\x7e]{1,256}$/;
const FORBIDDEN_HEADERS = ['jku', 'jwk', 'x5u', 'x5c'] as const;

/**
 * Bearer JWT authentication with jose: keys from a remote JWKS or static keys, a required
 * algorithm allowlist, `iss`/`aud`/`typ`/`exp`/`nbf` checked with a bounded skew, key-carrying
 * headers refused, a token only from `Authorization: Bearer`. Verified tokens are cached (keyed
 * by the token, never past `exp`); revocation is checked on every request.
 */
export const jwtPolicy = definePolicy({
  name: 'jwt',
  phase: 'authenticate',
  description: 'Bearer JWT authentication (JWKS or static keys, algorithm allowlist, claims, revocation); 401 with `WWW-Authenticate: Bearer`.',
  schema: JwtSchema,
  create(options, ctx) {
    const sources = [options.jwksUrl, options.publicKeys, options.secret].filter((x) => x !== undefined).length + (options.identity ? 1 : 0);
    if (sources !== 1) throw new Error('give exactly one of identity, jwksUrl, publicKeys or secret');
    const skewMs = parseDuration(options.clockSkew);
    if (skewMs > 300_000) throw new Error('clockSkew may be at most 5m');
    if (options.revocation === 'redis' && ctx.redis === undefined) throw new Error("revocation 'redis' needs the top-level 'redis' settings");

    let keys: KeyResolver | Uint8Array;
    let remote: RemoteJwks | undefined;
    let own: IdentityLink['keys'];
    let revocation: Revocation;
    let algorithms: string[];
    let issuer: string | string[];
    let audience: string | string[];
    let typ = options.typ;
    if (options.identity) {
      const identity = ctx.identity;
      if (identity === undefined) throw new Error("identity: true needs an enabled top-level 'identity' section");
      if (options.typ !== undefined && options.typ !== 'at+jwt') throw new Error("with identity: true, typ is always 'at+jwt'");
      typ = 'at+jwt';
      algorithms = [...(options.algorithms ?? identity.algorithms)];
      issuer = options.issuer ?? identity.issuer;
      audience = options.audience ?? [...identity.audience];
      own = identity.keys;
      keys = (header) => {
        if (own === undefined) return Promise.reject(new RampartError('RMP_AUTH_UNAVAILABLE', { detail: 'The identity service is not running.', headers: { 'retry-after': '5' } }));
        return Promise.resolve(own.verificationKey(header.kid));
      };
      revocation = identity.revocation ?? ctx.stores.revocation(ctx.redis);
    } else {
      if (options.algorithms === undefined || options.issuer === undefined || options.audience === undefined) throw new Error('algorithms, issuer and audience are required (unless identity: true)');
      algorithms = [...options.algorithms];
      issuer = options.issuer;
      audience = options.audience;
      const hmac = algorithms.filter((a) => (HMAC_ALGORITHMS as readonly string[]).includes(a));
      if (options.secret !== undefined && hmac.length !== algorithms.length) throw new Error('with a secret, only HMAC algorithms (HS256, HS384, HS512) can be listed');
      if (options.secret === undefined && hmac.length > 0) throw new Error('HMAC algorithms need a secret; with public keys they would let a public key be used as an HMAC secret');
      if (options.jwksUrl !== undefined) {
        remote = new RemoteJwks(options.jwksUrl, {
          refreshMs: parseDuration(options.jwks.refresh),
          cooldownMs: parseDuration(options.jwks.cooldown),
          timeoutMs: parseDuration(options.jwks.timeout),
          staleMs: parseDuration(options.jwks.staleIfError),
        });
        keys = remote.resolve;
      } else if (options.publicKeys !== undefined) keys = staticKeys(options.publicKeys);
      else keys = new TextEncoder().encode(options.secret);
      revocation = ctx.stores.revocation(options.revocation === 'memory' ? undefined : ctx.redis);
    }
    const verifyOptions = {
      algorithms,
      issuer,
      audience,
      ...(typ !== undefined ? { typ } : {}),
      clockTolerance: Math.floor(skewMs / 1000),
      requiredClaims: ['exp'],
    };
    const refuse = bearerRefusal(options.realm);
    const { scopesClaim, rolesClaim, anonymous, hideCredentials } = options;
    const hide = hideCredentials ? 'authorization' : undefined;
    const cache = new Map<string, Verified>();
    const cacheSize = options.cacheSize;
    const accept = (req: RequestContext, verified: Verified): void => setConsumer(req, verified.consumer);

    const checkRevoked = (req: RequestContext, verified: Verified): void | Promise<void> => {
      const revoked = revocation.isRevoked(verified);
      if (revoked === true) throw refuse('RMP_AUTH_TOKEN_REVOKED', 'The token has been revoked');
      if (revoked === false) return accept(req, verified);
      return revoked.then((r) => {
        if (r) throw refuse('RMP_AUTH_TOKEN_REVOKED', 'The token has been revoked');
        accept(req, verified);
      });
    };

    const verify = async (req: RequestContext, token: string): Promise<void> => {
      let header;
      try {
        header = decodeProtectedHeader(token);
      } catch {
        throw refuse('RMP_AUTH_TOKEN_INVALID', 'The token is not a JWS');
      }
      for (const name of FORBIDDEN_HEADERS) if (header[name] !== undefined) throw refuse('RMP_AUTH_TOKEN_INVALID', `The token carries a ${name} header`);
      if (header.kid !== undefined && (typeof header.kid !== 'string' || !KID.test(header.kid))) throw refuse('RMP_AUTH_TOKEN_INVALID', 'The token has an invalid kid');
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(token, keys as KeyResolver, verifyOptions));
      } catch (error) {
        if (error instanceof RampartError) throw error;
        if (error instanceof errors.JWTExpired) throw refuse('RMP_AUTH_TOKEN_EXPIRED', 'The token has expired');
        throw refuse('RMP_AUTH_TOKEN_INVALID', describe(error));
      }
      let verified: Verified;
      try {
        verified = toVerified(payload, scopesClaim, rolesClaim, remote?.generation ?? own?.generation ?? 0);
      } catch {
        throw refuse('RMP_AUTH_TOKEN_INVALID', 'The token has no usable subject');
      }
      if (cacheSize > 0) {
        if (cache.size >= cacheSize) cache.delete(cache.keys().next().value!);
        cache.set(token, verified);
      }
      return checkRevoked(req, verified);
    };

    return {
      hides: hide === undefined ? undefined : [hide],
      request(req) {
        if (tokenInQuery(req.query)) {
          throw refuse('RMP_AUTH_INVALID_REQUEST', 'Tokens are accepted only in the Authorization header');
        }
        const raw = req.request.raw;
        const authorization = raw.headers.authorization;
        if (authorization === undefined) {
          if (anonymous) return undefined;
          throw refuse('RMP_AUTH_REQUIRED');
        }
        if (repeatedAuthorization(raw.rawHeaders)) throw refuse('RMP_AUTH_INVALID_REQUEST', 'Expected one Authorization header');
        const match = BEARER.exec(authorization);
        if (match === null) throw refuse('RMP_AUTH_INVALID_REQUEST', 'Expected Authorization: Bearer <token>');
        const token = match[1]!;
        // A JWS is base64url: padding would give one token many spellings (and cache entries).
        if (token.includes('=')) throw refuse('RMP_AUTH_TOKEN_INVALID', 'The token is malformed');
        const hit = cache.get(token);
        if (hit !== undefined) {
          // Never past exp, and never on a key the issuer has since withdrawn.
          const now = Date.now();
          if (hit.exp + skewMs > now && (remote === undefined || (hit.keys === remote.generation && !remote.due(now))) && (own === undefined || hit.keys === own.generation)) return checkRevoked(req, hit);
          cache.delete(token);
        }
        return verify(req, token);
      },
    };
  },
});

function toVerified(payload: JWTPayload, scopesClaim: string, rolesClaim: string, keys: number): Verified {
  const scopeValue = payload[scopesClaim];
  const scopes = typeof scopeValue === 'string' ? scopeValue.split(' ').filter((s) => s !== '') : Array.isArray(scopeValue) ? scopeValue.filter((s): s is string => typeof s === 'string') : [];
  const rolesValue = payload[rolesClaim];
  const roles = Array.isArray(rolesValue) ? rolesValue.filter((r): r is string => typeof r === 'string') : [];
  const id = typeof payload.sub === 'string' ? payload.sub : typeof payload.client_id === 'string' ? `client:${payload.client_id}` : '';
  if (id === '' || id.length > 256 || !/^[\x20-\x7e]+$/.test(id)) throw new Error('no usable subject');
  const type = typeof payload.sub !== 'string' || payload.sub.startsWith('client:') ? 'client' : 'user';
  return {
    consumer: Object.freeze({ id, type, scopes: Object.freeze(scopes), roles: Object.freeze(roles), claims: Object.freeze({ ...payload }) }),
    keys,
    exp: (payload.exp ?? 0) * 1000,
    jti: typeof payload.jti === 'string' ? payload.jti : undefined,
    // Revocation by subject uses the consumer id, so client tokens without `sub` can be revoked too.
    sub: id,
    iat: typeof payload.iat === 'number' ? payload.iat : undefined,
  };
}

/** A fixed description per jose error: never the token's own text. */
function describe(error: unknown): string {
  if (error instanceof errors.JWTClaimValidationFailed) return `The token's ${error.claim} claim is not accepted`;
  if (error instanceof errors.JOSEAlgNotAllowed) return 'The token\'s algorithm is not accepted';
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'The token\'s signature is not valid';
  if (error instanceof errors.JWKSNoMatchingKey) return 'No key matches the token';
  if (error instanceof errors.JOSENotSupported) return 'The token uses an unsupported feature';
  if (error instanceof errors.JWTInvalid || error instanceof errors.JWSInvalid) return 'The token is malformed';
  return 'The token is not valid';
}
