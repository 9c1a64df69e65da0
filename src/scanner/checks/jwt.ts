import { createHmac, createPublicKey, timingSafeEqual, type JsonWebKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { base64url, decodeJwt, decodeProtectedHeader, SignJWT, UnsecuredJWT, type JWK, type JWTPayload, type ProtectedHeaderParameters } from 'jose';
import { findingFrom } from '../finding.js';
import type { ScanResponse } from '../http.js';
import { CredentialError, logIn } from '../identity.js';
import type { Check, Finding, ScanContext } from '../types.js';
import { baselineOf, isApiSuccess, isRefusal, isSuccess, logoutOperation, maskSecret, NO_BASELINE, withoutSecret, type Baseline } from './authn-common.js';
import { undecided } from './authz-common.js';

/**
 * JWT: reads caller A's bearer token and forges variants of it — unsigned (`alg: none`), HS256
 * with the server's public key as the HMAC secret, the same token with its payload changed — each
 * sent once to the baseline endpoint (which accepts the real token and refuses an anonymous caller
 * and a garbage token, or nothing is decided). Offline, with no request: the HMAC secret against
 * the bundled wordlist, and the `exp` claim. With `--login`: a fresh session is logged out and its
 * token tried again.
 */

const CHECK = 'jwt';
/** JWKS keys tried for the algorithm confusion, at most; each with at most four encodings. */
const MAX_KEYS = 2;
const HMAC_HASHES: Record<string, string> = { HS256: 'sha256', HS384: 'sha384', HS512: 'sha512' };
const ASYMMETRIC = /^(RS|PS|ES)\d{3}$|^EdDSA$|^ES256K$/;
/** The claim the tampered token adds: changes the payload, harmless if the server reads it. */
const TAMPER_CLAIM = 'rampart_scan';

let wordlist: readonly string[] | undefined;
/** The bundled secrets (src/scanner/wordlists/jwt-secrets.txt; the same path from src/ and dist/). */
export function jwtSecrets(): readonly string[] {
  wordlist ??= readFileSync(new URL('../../../src/scanner/wordlists/jwt-secrets.txt', import.meta.url), 'utf8')
    .split('\n')
    .map((line) => line.replace(/\r$/, ''))
    .filter((line) => line !== '' && !line.startsWith('#'));
  return wordlist;
}

/** The secret of the wordlist the token's HMAC signature verifies with, if any (offline: nothing is sent). */
export function crackHmac(token: string, alg: string): string | undefined {
  const hash = HMAC_HASHES[alg];
  // Reading the compact serialization (RFC 7515 §7.1): the signing input is the first two parts.
  const parts = token.split('.');
  if (hash === undefined || parts.length !== 3) return undefined;
  const input = `${parts[0]}.${parts[1]}`;
  let signature: Uint8Array;
  try {
    signature = base64url.decode(parts[2]!);
  } catch {
    return undefined;
  }
  for (const secret of jwtSecrets()) {
    const mac = createHmac(hash, secret).update(input).digest();
    if (mac.length === signature.length && timingSafeEqual(mac, signature)) return secret;
  }
  return undefined;
}

interface Parsed {
  token: string;
  header: ProtectedHeaderParameters;
  payload: JWTPayload;
}

function parse(token: string | undefined): Parsed | undefined {
  if (token === undefined) return undefined;
  try {
    return { token, header: decodeProtectedHeader(token), payload: decodeJwt(token) };
  } catch {
    return undefined;
  }
}

/**
 * An exchange that shows the server takes this token: a 2XX answer to a request carrying it in the
 * Authorization header (masked in the evidence), else the login answer that issued it.
 */
function exchangeWith(ctx: ScanContext, token: string): ScanResponse | undefined {
  const ok = ctx.http.history.filter(isSuccess);
  const carrying = ok.filter((r) => r.request.headers.authorization === `Bearer ${token}`);
  // Best, an operation the document says needs credentials: the answer shows the token is what let the caller in.
  const guarded = new Set(ctx.endpoints.filter((e) => e.requiresAuth === true).map((e) => `${e.method} ${e.url.href}`));
  return carrying.find((r) => guarded.has(`${r.request.method} ${r.request.url}`)) ?? carrying[0] ?? ok.find((r) => r.body.includes(token));
}

/** The evidence of an offline finding, with the token (and the login's password, when the exchange is the login) masked. */
function offlineFinding(ctx: ScanContext, res: ScanResponse, token: string, f: ReturnType<typeof fields>): Finding {
  let finding = withoutSecret(findingFrom(CHECK, res, f), token);
  if (ctx.login !== undefined && res.request.body !== undefined) finding = withoutSecret(finding, JSON.stringify(ctx.login.password).slice(1, -1));
  return finding;
}

const fields = (id: string, title: string, severity: Finding['severity'], detail: string, remediation: string) => ({ id, title, severity, confidence: 'high' as const, owasp: 'API2:2023' as const, detail, remediation });

function offline(ctx: ScanContext, jwt: Parsed): Finding[] {
  const found: Finding[] = [];
  const shown = exchangeWith(ctx, jwt.token);
  // A token no answer was seen to accept might not be this server's: nothing is decided on it.
  if (shown === undefined) return found;
  const alg = String(jwt.header.alg);
  if (HMAC_HASHES[alg] !== undefined) {
    const secret = crackHmac(jwt.token, alg);
    if (secret !== undefined) {
      found.push(offlineFinding(ctx, shown, jwt.token, fields('jwt.weak-secret', `JWT signed with a guessable ${alg} secret`, 'critical',
        `Caller A's ${alg} token verifies with the secret "${maskSecret(secret)}" (${secret.length} characters), one of the ${jwtSecrets().length} common secrets the scanner tries offline: anyone can sign tokens for any user and role.`,
        'Sign with at least 256 random bits (openssl rand -base64 32) kept out of code and config files, rotate it now (every token signed with it can be forged), or move to an asymmetric algorithm (EdDSA, ES256) so verifiers hold no signing secret.')));
    }
  }
  if (jwt.payload.exp === undefined) {
    found.push(offlineFinding(ctx, shown, jwt.token, fields('jwt.no-exp', 'JWT without an expiry (exp)', 'medium',
      `Caller A's token has no exp claim (claims: ${Object.keys(jwt.payload).join(', ') || 'none'}): it stays valid until its key changes, however long ago it leaked.`,
      'Issue access tokens with a short exp (minutes) and require exp when verifying; long sessions belong to refresh tokens that can be revoked.')));
  }
  return found;
}

async function probe(ctx: ScanContext, baseline: Baseline, token: string): Promise<ScanResponse> {
  return ctx.http.send({ url: baseline.endpoint.url, headers: { accept: 'application/json', authorization: `Bearer ${token}` } });
}

/** Same header and signature, one claim added to the payload. */
function tampered(jwt: Parsed): string {
  const [header, , signature] = jwt.token.split('.');
  return `${header}.${base64url.encode(JSON.stringify({ ...jwt.payload, [TAMPER_CLAIM]: 'tampered' }))}.${signature}`;
}

function hsHeader(jwt: Parsed): ProtectedHeaderParameters & { alg: string } {
  return { alg: 'HS256', ...(jwt.header.typ !== undefined ? { typ: jwt.header.typ } : {}), ...(jwt.header.kid !== undefined ? { kid: jwt.header.kid } : {}) };
}

/** Where the public keys are: named by the document (a JWKS operation, a `jwks` property, OpenID discovery), else /.well-known/jwks.json; the target's origin only. */
async function jwksUrl(ctx: ScanContext): Promise<URL> {
  const sameOrigin = (text: string): URL | undefined => {
    try {
      const url = new URL(text, ctx.target);
      return url.origin === ctx.target.origin ? url : undefined;
    } catch {
      return undefined;
    }
  };
  const op = ctx.endpoints.find((e) => e.method === 'GET' && /(jwks(\.json)?|certs)$/i.test(e.url.pathname));
  if (op !== undefined) return op.url;
  for (const scheme of Object.values(ctx.document?.securitySchemes ?? {})) {
    if (scheme === null || typeof scheme !== 'object') continue;
    for (const [key, value] of Object.entries(scheme as Record<string, unknown>)) {
      if (typeof value === 'string' && /jwks/i.test(key)) {
        const url = sameOrigin(value);
        if (url !== undefined) return url;
      }
    }
    const discovery = (scheme as { openIdConnectUrl?: unknown }).openIdConnectUrl;
    const discoveryUrl = typeof discovery === 'string' ? sameOrigin(discovery) : undefined;
    if (discoveryUrl !== undefined) {
      const res = await ctx.http.send({ url: discoveryUrl, headers: { accept: 'application/json' } });
      const named = isSuccess(res) ? (jsonOf(res) as { jwks_uri?: unknown } | undefined)?.jwks_uri : undefined;
      const url = typeof named === 'string' ? sameOrigin(named) : undefined;
      if (url !== undefined) return url;
    }
  }
  return new URL('/.well-known/jwks.json', ctx.target.origin);
}

function jsonOf(res: ScanResponse): unknown {
  try {
    return JSON.parse(res.body);
  } catch {
    return undefined;
  }
}

/** The public key as the byte strings a confused verifier might use as its HMAC secret. */
export function hmacEncodings(jwk: JWK): { name: string; secret: string }[] {
  const key = createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' });
  const pem = key.export({ type: 'spki', format: 'pem' }) as string;
  const list = [
    { name: 'the public key as PEM (SPKI) text', secret: pem },
    { name: 'the PEM text without its final newline', secret: pem.trimEnd() },
  ];
  if (jwk.kty === 'RSA') list.push({ name: 'the public key as PKCS#1 PEM text', secret: key.export({ type: 'pkcs1', format: 'pem' }) as string });
  const raw = jwk.kty === 'RSA' ? jwk.n : jwk.x;
  if (raw !== undefined) list.push({ name: `the JWK's ${jwk.kty === 'RSA' ? 'n' : 'x'} (base64url text)`, secret: raw });
  return list;
}

function keysFor(jwt: Parsed, set: unknown): JWK[] {
  const keys = (set as { keys?: unknown } | undefined)?.keys;
  if (!Array.isArray(keys)) return [];
  const usable = keys.filter((k): k is JWK => k !== null && typeof k === 'object' && typeof (k as JWK).kty === 'string' && (k as JWK).kty !== 'oct');
  const byKid = usable.filter((k) => jwt.header.kid !== undefined && k.kid === jwt.header.kid);
  const family = String(jwt.header.alg).startsWith('E') ? (jwt.header.alg === 'EdDSA' ? 'OKP' : 'EC') : 'RSA';
  return (byKid.length > 0 ? byKid : usable.filter((k) => k.kty === family)).slice(0, MAX_KEYS);
}

async function forged(ctx: ScanContext, baseline: Baseline, jwt: Parsed): Promise<Finding[]> {
  const at = baseline.endpoint;
  // First the signature itself: if it is not checked, unsigned and re-signed tokens pass for that
  // reason alone, and one finding names the cause.
  const altered = await probe(ctx, baseline, tampered(jwt));
  undecided(ctx, CHECK, 'jwt.signature-not-verified', altered);
  if (isApiSuccess(altered)) {
    return [findingFrom(CHECK, altered, fields('jwt.signature-not-verified', 'JWT signatures are not verified', 'critical',
      `Caller A's token with a claim added to its payload ("${TAMPER_CLAIM}") and its old signature was accepted on ${at.method} ${at.url.pathname} (${altered.status}); a garbage token and no token are refused there. Any claim (sub, role, exp) can be changed at will; unsigned and re-signed tokens pass too, for the same reason.`,
      'Verify the signature of every token, with the issuer\'s key and an algorithm allowlist, before reading any claim (jose: jwtVerify, never decodeJwt alone).'), at)];
  }
  const found: Finding[] = [];
  const unsigned = await probe(ctx, baseline, new UnsecuredJWT(jwt.payload).encode());
  undecided(ctx, CHECK, 'jwt.alg-none', unsigned);
  if (isApiSuccess(unsigned)) {
    found.push(findingFrom(CHECK, unsigned, fields('jwt.alg-none', 'Unsigned JWTs (alg: none) are accepted', 'critical',
      `Caller A's claims in an unsigned token (header {"alg":"none"}, empty signature) were accepted on ${at.method} ${at.url.pathname} (${unsigned.status}): anyone can write a token for any user.`,
      "Verify with an explicit allowlist of the algorithms the issuer signs with, and never 'none' (jose: jwtVerify(token, key, { algorithms: ['EdDSA'] }))."), at));
  }
  if (ASYMMETRIC.test(String(jwt.header.alg))) {
    const url = await jwksUrl(ctx);
    const res = await ctx.http.send({ url, headers: { accept: 'application/jwk-set+json, application/json' } });
    const keys = isSuccess(res) ? keysFor(jwt, jsonOf(res)) : [];
    if (keys.length === 0) ctx.skip(CHECK, `jwt.hs256-public-key: no public key of the token's kind at ${url.pathname} (${res.status})`);
    confusion: for (const jwk of keys) {
      let encodings: { name: string; secret: string }[];
      try {
        encodings = hmacEncodings(jwk);
      } catch {
        continue; // a key node:crypto cannot read
      }
      for (const encoding of encodings) {
        const token = await new SignJWT(jwt.payload).setProtectedHeader(hsHeader(jwt)).sign(new TextEncoder().encode(encoding.secret));
        const answer = await probe(ctx, baseline, token);
        undecided(ctx, CHECK, 'jwt.hs256-public-key', answer);
        if (isApiSuccess(answer)) {
          found.push(findingFrom(CHECK, answer, fields('jwt.hs256-public-key', 'JWT algorithm confusion: HS256 signed with the public key is accepted', 'critical',
            `Caller A's claims signed with HS256 using ${encoding.name} of the published key${jwk.kid === undefined ? '' : ` ${jwk.kid}`} (${url.pathname}) as the HMAC secret were accepted on ${at.method} ${at.url.pathname} (${answer.status}): the key is public, so anyone can sign tokens.`,
            'Bind each key to its algorithm and verify with an allowlist: an RSA, EC or Ed25519 public key verifies only its asymmetric algorithm and is never used as an HMAC secret.'), at));
          break confusion;
        }
      }
    }
  }
  return found;
}

async function afterLogout(ctx: ScanContext, baseline: Baseline): Promise<Finding[]> {
  const login = ctx.login!;
  let fresh;
  try {
    fresh = await logIn(ctx.http, login, 'A');
  } catch (error) {
    if (!(error instanceof CredentialError)) throw error;
    ctx.skip(CHECK, `jwt.valid-after-logout: no decision, logging in again failed (${error.message})`);
    return [];
  }
  const call = () => ctx.http.send({ url: baseline.endpoint.url, headers: { accept: 'application/json', ...fresh.headers } });
  const before = await call();
  if (undecided(ctx, CHECK, 'jwt.valid-after-logout', before)) return [];
  if (!isApiSuccess(before)) {
    ctx.skip(CHECK, `jwt.valid-after-logout: no decision, a fresh session is not accepted on ${baseline.endpoint.url.pathname}`);
    return [];
  }
  const logout = logoutOperation(ctx, login.url);
  const required = logout.endpoint?.requestBody?.required === true;
  const out = await ctx.http.send({ method: 'POST', url: logout.url, headers: { accept: 'application/json', ...fresh.headers, ...(required ? { 'content-type': 'application/json' } : {}) }, ...(required ? { body: '{}' } : {}) });
  if (undecided(ctx, CHECK, 'jwt.valid-after-logout', out)) return [];
  if (!isSuccess(out)) {
    ctx.skip(CHECK, `jwt.valid-after-logout: no decision, POST ${logout.url.pathname} answered ${out.status} (pass --openapi with the logout operation)`);
    return [];
  }
  const after = await call();
  if (isApiSuccess(after)) {
    return [findingFrom(CHECK, after, fields('jwt.valid-after-logout', 'Tokens stay valid after logout', 'medium',
      `A fresh session of ${login.user} was logged out (POST ${logout.url.pathname} answered ${out.status}); its token was still accepted afterwards on ${baseline.endpoint.method} ${baseline.endpoint.url.pathname} (${after.status}). A stolen token survives the logout meant to end it.`,
      'Revoke at logout: denylist the token\'s jti until its exp (or end a server-side session) and check the denylist on every request; keep access tokens short-lived.'), baseline.endpoint)];
  }
  if (!undecided(ctx, CHECK, 'jwt.valid-after-logout', after) && !isRefusal(after)) ctx.skip(CHECK, `jwt.valid-after-logout: no decision, the logged-out token got ${after.status}`);
  return [];
}

export const jwtCheck: Check = {
  id: CHECK,
  title: 'JSON Web Tokens',
  owasp: 'API2:2023',
  description:
    "Forges variants of caller A's JWT (alg none, HS256 keyed with the published public key, payload changed under the old signature) and sends each once to an endpoint that accepts the real token and refuses anonymous and garbage ones; cracks HMAC secrets offline against a bundled wordlist; flags tokens without exp; with --login, logs a fresh session out and tries its token again.",
  async run(ctx) {
    const a = ctx.identities.a;
    if (a === undefined) {
      ctx.skip(CHECK, 'needs caller A (--auth with a bearer JWT, or --login)');
      return [];
    }
    const jwt = parse(a.token);
    const baseline = await baselineOf(ctx);
    const found: Finding[] = [];
    if (jwt === undefined) ctx.skip(CHECK, "caller A's credentials are not a bearer JWT: the token checks do not apply");
    else found.push(...offline(ctx, jwt));
    if (baseline === undefined) ctx.skip(CHECK, NO_BASELINE);
    else if (jwt !== undefined && baseline.garbage !== undefined && !isRefusal(baseline.garbage)) {
      ctx.skip(CHECK, `no decision on forged tokens: a garbage bearer token got ${baseline.garbage.status} on ${baseline.endpoint.url.pathname}`);
    } else if (jwt !== undefined) found.push(...(await forged(ctx, baseline, jwt)));
    // Last: a server that ends every session of the user at logout would end caller A's too.
    if (ctx.login === undefined) ctx.skip(CHECK, 'jwt.valid-after-logout needs --login (it logs in a session of its own to log out)');
    else if (baseline !== undefined) found.push(...(await afterLogout(ctx, baseline)));
    return found;
  },
};
