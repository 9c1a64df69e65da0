import { createHmac, generateKeyPairSync, randomUUID, sign, constants, type KeyObject } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import { base64url, exportJWK } from 'jose';
import { Pool } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RampartError } from '../../src/errors/problem.js';
import type { RequestContext } from '../../src/gateway/context.js';
import { createEvents } from '../../src/observability/events.js';
import { createLogger } from '../../src/observability/logger.js';
import type { PolicyContext, PolicyHooks } from '../../src/policies/define.js';
import { jwtPolicy } from '../../src/policies/jwt/policy.js';
import { Stores } from '../../src/stores/stores.js';
import { startGateway, startUpstream, type TestGateway, type TestUpstream } from '../helpers/gateway.js';
import { optionsOf } from '../helpers/policy-config.js';
import { fuzz, FUZZ_TIMEOUT } from './fuzz.js';

/**
 * The jwt policy's verifier (src/policies/jwt) on valid tokens mutated at random: bits flipped,
 * characters inserted, deleted or replaced, truncation, segments dropped, repeated or swapped;
 * the header re-encoded with another `alg` (`none`, HMAC with the public key, algorithms outside
 * the allowlist), another or a hostile `kid`, key-carrying headers; claims changed (`exp`, `nbf`,
 * `iss`, `aud`, `sub`) and re-signed with the right key (so only the claim check can refuse
 * them), or with another key. A mutated token is never accepted — unless the mutation is a
 * no-op: the very same token, or a signature segment that decodes to the same bytes (base64url's
 * unused trailing bits). Every refusal is a 401 RampartError with a Bearer challenge; nothing
 * else is ever thrown. Checked on the policy's request hook directly (HS256 with a secret;
 * RS256, ES256 and EdDSA with static keys and with a JWKS on 127.0.0.1), and over real HTTP
 * through a gateway whose upstream must never see a refused token.
 *
 * Reproduce a failure: FUZZ_SEED=<seed> FUZZ_PATH=<path> npx vitest run test/fuzz/jwt.fuzz.test.ts -t '<name>'
 */

const ISSUER = 'https://issuer.test';
const AUDIENCE = 'fuzz-api';
const SECRET = 'a fuzzing secret of more than thirty-two bytes';
const OTHER_SECRET = 'another secret of more than thirty-two bytes!';

type Family = 'HS256' | 'RS256' | 'ES256' | 'EdDSA';
interface Signer {
  alg: string;
  key: KeyObject | string;
}

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const rsa2 = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const ec2 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const ec384 = generateKeyPairSync('ec', { namedCurve: 'P-384' });
const ed = generateKeyPairSync('ed25519');
const ed2 = generateKeyPairSync('ed25519');
const KIDS: Record<Exclude<Family, 'HS256'>, string> = { RS256: 'rsa-1', ES256: 'ec-1', EdDSA: 'ed-1' };
const RIGHT: Record<Family, KeyObject | string> = { HS256: SECRET, RS256: rsa.privateKey, ES256: ec.privateKey, EdDSA: ed.privateKey };
const PUBLIC_PEM = rsa.publicKey.export({ type: 'spki', format: 'pem' }) as string;

/** Signs any header and payload text, which jose would refuse to produce for most mutations. */
function signInput(input: string, signer: Signer): string {
  const { alg, key } = signer;
  const data = Buffer.from(input);
  if (alg === 'none') return '';
  if (alg.startsWith('HS')) return createHmac(`sha${alg.slice(2)}`, typeof key === 'string' ? key : key.export()).update(data).digest('base64url');
  if (typeof key === 'string') throw new Error('an asymmetric algorithm needs a key');
  if (alg === 'EdDSA') return sign(null, data, key).toString('base64url');
  const hash = `sha${alg.slice(2)}`;
  if (alg.startsWith('RS')) return sign(hash, data, key).toString('base64url');
  if (alg.startsWith('PS')) return sign(hash, data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: Number(alg.slice(2)) / 8 }).toString('base64url');
  return sign(hash, data, { key, dsaEncoding: 'ieee-p1363' }).toString('base64url');
}

const b64 = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

function mint(family: Family, header: Record<string, unknown> = {}, claims: Record<string, unknown> = {}): string {
  const now = Math.floor(Date.now() / 1000);
  const h = { alg: family, ...(family === 'HS256' ? { typ: 'JWT' } : { kid: KIDS[family], typ: 'at+jwt' }), ...header };
  const p = { iss: ISSUER, aud: AUDIENCE, sub: 'user-1', iat: now, exp: now + 3600, jti: randomUUID(), scope: 'a:read', ...claims };
  const input = `${b64(h)}.${b64(p)}`;
  return `${input}.${signInput(input, { alg: family, key: RIGHT[family] })}`;
}

// ---------------------------------------------------------------------------------------------
// Mutations. Each maps a token to another; structural ones do nothing to a token they cannot decode.

const CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const EXTRA_CHARS = ['.', '=', '+', '/', '~', ' ', '\0', '\n', 'é', '%', '"', '\\', '..'];
const aChar = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...CHARS) }, { weight: 1, arbitrary: fc.constantFrom(...EXTRA_CHARS) });

const now = () => Math.floor(Date.now() / 1000);
/** Claims no valid token of ours has (each must be refused even when signed with the right key). */
const BAD_CLAIMS: [string, () => Record<string, unknown>][] = [
  ['expired', () => ({ exp: now() - 3600 })],
  ['expired past the skew', () => ({ exp: now() - 120 })],
  ['no exp', () => ({ exp: undefined })],
  ['exp as text', () => ({ exp: String(now() + 3600) })],
  ['exp NaN-ish', () => ({ exp: null })],
  ['nbf in the future', () => ({ nbf: now() + 3600 })],
  ['iat as text', () => ({ iat: 'yesterday' })],
  ['other issuer', () => ({ iss: 'https://evil.test' })],
  ['issuer list', () => ({ iss: [ISSUER] })],
  ['no issuer', () => ({ iss: undefined })],
  ['other audience', () => ({ aud: 'other-api' })],
  ['audience list without ours', () => ({ aud: ['a', 'b'] })],
  ['no audience', () => ({ aud: undefined })],
  ['audience with a suffix', () => ({ aud: `${AUDIENCE} ` })],
  ['no subject', () => ({ sub: undefined })],
  ['empty subject', () => ({ sub: '' })],
  ['subject with a newline', () => ({ sub: 'user\n1' })],
  ['subject too long', () => ({ sub: 'u'.repeat(257) })],
  ['subject as number', () => ({ sub: 42 })],
];
/** Headers the policy or jose must refuse, signed with the right key. */
const BAD_HEADERS: [string, (family: Family) => Record<string, unknown>][] = [
  ['jku', () => ({ jku: 'https://evil.test/jwks' })],
  ['jwk', () => ({ jwk: { kty: 'oct', k: b64(SECRET) } })],
  ['x5u', () => ({ x5u: 'https://evil.test/cert' })],
  ['x5c', () => ({ x5c: ['MIIB'] })],
  ['unknown crit', () => ({ crit: ['exp2'], exp2: 1 })],
  ['crit not a list', () => ({ crit: 'b64' })],
  ['unencoded payload', () => ({ crit: ['b64'], b64: false })],
  ['kid with a newline', () => ({ kid: 'a\nb' })],
  ['kid not a string', () => ({ kid: 7 })],
  ['kid too long', () => ({ kid: 'k'.repeat(300) })],
  ['wrong typ', (family) => (family === 'HS256' ? { jku: 'x' } : { typ: 'JWT' })],
  ['alg not allowed, same key', (family) => ({ alg: { HS256: 'HS512', RS256: 'PS256', ES256: 'ES256K', EdDSA: 'Ed25519' }[family] })],
];
/** Keys (and algorithms) an attacker could sign with: never the right one for the family. */
const WRONG_SIGNERS: [string, (family: Family) => Signer[]][] = [
  ['none', () => [{ alg: 'none', key: '' }]],
  ['HS256 with the public key as secret', () => [{ alg: 'HS256', key: PUBLIC_PEM }]],
  ['HS256 with a JWK as secret', () => [{ alg: 'HS256', key: JSON.stringify({ kty: 'RSA' }) }]],
  ['HS256 with another secret', () => [{ alg: 'HS256', key: OTHER_SECRET }]],
  ['RS256 with another RSA key', () => [{ alg: 'RS256', key: rsa2.privateKey }]],
  ['PS256 with the right RSA key', () => [{ alg: 'PS256', key: rsa.privateKey }]],
  ['ES256 with another EC key', () => [{ alg: 'ES256', key: ec2.privateKey }]],
  ['ES384 with a P-384 key', () => [{ alg: 'ES384', key: ec384.privateKey }]],
  ['EdDSA with another key', () => [{ alg: 'EdDSA', key: ed2.privateKey }]],
  ['the right key of another family', (family) => (family === 'HS256' ? [{ alg: 'RS256', key: rsa.privateKey }] : [{ alg: 'HS256', key: SECRET }])],
];

interface Parts {
  header: Record<string, unknown>;
  payload: Record<string, unknown>;
}

function decode(token: string): Parts | undefined {
  const [h, p] = token.split('.');
  try {
    const header = JSON.parse(Buffer.from(h ?? '', 'base64url').toString()) as unknown;
    const payload = JSON.parse(Buffer.from(p ?? '', 'base64url').toString()) as unknown;
    if (header === null || typeof header !== 'object' || payload === null || typeof payload !== 'object') return undefined;
    return { header: header as Record<string, unknown>, payload: payload as Record<string, unknown> };
  } catch {
    return undefined;
  }
}

function encode(parts: Parts, signer: Signer | 'keep', old: string): string {
  const input = `${b64(parts.header)}.${b64(parts.payload)}`;
  return `${input}.${signer === 'keep' ? (old.split('.')[2] ?? '') : signInput(input, signer)}`;
}

type Mutation = (token: string, family: Family) => string;
const at = (token: string, n: number) => n % (token.length + 1);

const byteMutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ pos: fc.nat(), bit: fc.integer({ min: 0, max: 6 }) }).map(({ pos, bit }) => (t: string) => {
    if (t.length === 0) return t;
    const i = pos % t.length;
    return t.slice(0, i) + String.fromCharCode(t.charCodeAt(i) ^ (1 << bit)) + t.slice(i + 1);
  }),
  fc.record({ pos: fc.nat(), c: aChar }).map(({ pos, c }) => (t: string) => t.slice(0, at(t, pos)) + c + t.slice(at(t, pos))),
  fc.record({ pos: fc.nat(), c: aChar }).map(({ pos, c }) => (t: string) => (t.length === 0 ? t : t.slice(0, pos % t.length) + c + t.slice((pos % t.length) + 1))),
  fc.record({ pos: fc.nat(), n: fc.integer({ min: 1, max: 8 }) }).map(({ pos, n }) => (t: string) => t.slice(0, at(t, pos)) + t.slice(at(t, pos) + n)),
  fc.nat().map((pos) => (t: string) => t.slice(0, at(t, pos))),
  // The signature's last character: its low bits are unused, so some of these are no-ops.
  aChar.map((c) => (t: string) => t.slice(0, -1) + c),
  fc.constantFrom<Mutation>(
    (t) => t.split('.').slice(0, 2).join('.'),
    (t) => `${t.split('.').slice(0, 2).join('.')}.`,
    (t) => `${t}.`,
    (t) => `${t}.${t.split('.')[2] ?? ''}`,
    (t) => `.${t}`,
    (t) => t.split('.').reverse().join('.'),
    (t) => { const [h, p, s] = t.split('.'); return `${p}.${h}.${s}`; },
    (t) => { const [h, , s] = t.split('.'); return `${h}.${s}`; },
    (t) => `${t.split('.')[0]}..${t.split('.')[2] ?? ''}`,
    (t) => `${t}.AAAA.BBBB`,
    (t) => t.toUpperCase(),
    (t) => t.replace(/-/g, '+').replace(/_/g, '/'),
    (t) => `${t}=`,
    (t) => `${t}==`,
    (t) => ` ${t}`,
    (t) => `${t} `,
    (t) => t.repeat(2),
    () => '',
  ),
);

const structuralMutation: fc.Arbitrary<Mutation> = fc.oneof(
  // Claims changed, the signature kept (any change at all must break it).
  fc.record({ claim: fc.constantFrom('sub', 'scope', 'roles', 'exp', 'aud', 'iss', 'admin'), value: fc.jsonValue({ maxDepth: 1 }) }).map(({ claim, value }) => (t: string) => {
    const parts = decode(t);
    if (parts === undefined) return t;
    return encode({ ...parts, payload: { ...parts.payload, [claim]: value } }, 'keep', t);
  }),
  // A bad claim, re-signed with the right key: the claim check alone must refuse it.
  fc.constantFrom(...BAD_CLAIMS).map(([, claims]) => (t: string, family: Family) => {
    const parts = decode(t);
    if (parts === undefined) return t;
    return encode({ ...parts, payload: JSON.parse(JSON.stringify({ ...parts.payload, ...claims() })) as Record<string, unknown> }, { alg: family, key: RIGHT[family] }, t);
  }),
  // A forbidden header, re-signed with the right key.
  fc.constantFrom(...BAD_HEADERS).map(([, header]) => (t: string, family: Family) => {
    const parts = decode(t);
    if (parts === undefined) return t;
    const extra = header(family);
    const h = { ...parts.header, ...extra };
    // The same key under another algorithm name (HS512 with the secret, PS256 with the RSA key);
    // ES256K and Ed25519 are signed as ES256 and EdDSA.
    const signer: Signer = { alg: extra.alg === 'HS512' || extra.alg === 'PS256' ? extra.alg : family, key: RIGHT[family] };
    return encode({ ...parts, header: h }, signer, t);
  }),
  // Another alg in the header: the signature kept, dropped, or made with an attacker's key.
  fc.record({ alg: fc.constantFrom<unknown>('none', 'None', 'NONE', 'HS256', 'HS384', 'RS256', 'RS384', 'PS256', 'ES256', 'ES384', 'EdDSA', 'Ed25519', 'hs256', '', null, 1, ['HS256']), signer: fc.constantFrom<'keep' | 'drop'>('keep', 'drop') }).map(({ alg, signer }) => (t: string) => {
    const parts = decode(t);
    if (parts === undefined) return t;
    const out = encode({ ...parts, header: { ...parts.header, alg } }, 'keep', t);
    return signer === 'drop' ? `${out.split('.').slice(0, 2).join('.')}.` : out;
  }),
  fc.constantFrom(...WRONG_SIGNERS).chain(([, signers]) => fc.constant(signers)).map((signers) => (t: string, family: Family) => {
    const parts = decode(t);
    if (parts === undefined) return t;
    const signer = signers(family)[0]!;
    return encode({ ...parts, header: { ...parts.header, alg: signer.alg } }, signer, t);
  }),
  // Another kid: another family's, made up, hostile, or none (signature kept).
  fc.constantFrom<unknown>(undefined, 'rsa-1', 'ec-1', 'ed-1', 'no-such-kid', '../../../../etc/passwd', "x' OR '1'='1", '', 0, ['rsa-1'], { kid: 'rsa-1' }).map((kid) => (t: string) => {
    const parts = decode(t);
    if (parts === undefined) return t;
    const header = { ...parts.header, kid };
    if (kid === undefined) delete header.kid;
    return encode({ ...parts, header }, 'keep', t);
  }),
  // The same header and payload JSON re-encoded (other spacing, keys reordered): new bytes, old signature.
  fc.constantFrom<Mutation>(
    (t) => { const [h, p, s] = t.split('.'); const json = Buffer.from(h ?? '', 'base64url').toString(); return `${b64(` ${json}`)}.${p}.${s}`; },
    (t) => { const parts = decode(t); if (parts === undefined) return t; const reversed = Object.fromEntries(Object.entries(parts.payload).reverse()); return encode({ ...parts, payload: reversed }, 'keep', t); },
    (t) => { const [h, p, s] = t.split('.'); return `${h}.${Buffer.from(p ?? '', 'base64url').toString('base64')}.${s}`; },
  ),
);

const mutations = fc.array(fc.oneof(byteMutation, structuralMutation), { minLength: 1, maxLength: 3 });

/**
 * The no-op: the same header and payload text, and a signature that decodes to the same bytes
 * (the last character of a base64url segment has unused low bits; jose's decoder, like atob,
 * ignores them).
 */
function isNoOp(original: string, token: string): boolean {
  // `Authorization: Bearer  <token>`: RFC 6750 allows several spaces after the scheme.
  const mutated = token.replace(/^ +/, '');
  if (mutated === original) return true;
  const a = original.split('.');
  const b = mutated.split('.');
  if (b.length !== 3 || a[0] !== b[0] || a[1] !== b[1]) return false;
  try {
    return Buffer.from(base64url.decode(a[2]!)).equals(Buffer.from(base64url.decode(b[2]!)));
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// The verifier: the jwt policy's request hook, as the pipeline runs it.

const logger = createLogger({ level: 'silent', destination: 'stderr' });
const stores = new Stores(logger, { connect: false });
const policyContext: PolicyContext = {
  route: 'fuzz',
  mode: 'production',
  configDir: '/tmp',
  dataDir: '/tmp',
  logger,
  events: createEvents(logger),
  stores,
  redis: undefined,
  identity: undefined,
  proxied: true,
  openapi: undefined,
};

function verifier(options: Record<string, unknown>): PolicyHooks {
  return jwtPolicy.create(optionsOf('jwt', { issuer: ISSUER, audience: AUDIENCE, ...options }) as never, policyContext);
}

type Outcome = 'accepted' | RampartError;

/** Runs the hook on a request carrying `Authorization: Bearer <token>`; anything but a RampartError is a crash. */
async function authenticate(hooks: PolicyHooks, token: string): Promise<Outcome> {
  const authorization = `Bearer ${token}`;
  const ctx = { query: '', request: { raw: { headers: { authorization }, rawHeaders: ['Authorization', authorization] } }, upstreamHeaders: undefined, consumer: undefined, authenticated: false } as unknown as RequestContext;
  try {
    await hooks.request!(ctx);
  } catch (error) {
    if (error instanceof RampartError) return error;
    throw new Error(`the jwt policy threw ${String(error)} (not a RampartError)`, { cause: error });
  }
  if (ctx.consumer === undefined) throw new Error('the hook returned without a consumer and without refusing');
  return 'accepted';
}

function assertRefusal(outcome: RampartError): void {
  expect(outcome.status).toBe(401);
  expect(['RMP_AUTH_TOKEN_INVALID', 'RMP_AUTH_TOKEN_EXPIRED', 'RMP_AUTH_INVALID_REQUEST']).toContain(outcome.code);
  expect(outcome.headers?.['www-authenticate']).toMatch(/^Bearer realm="rampart", error="(invalid_token|invalid_request)"/);
}

let jwks: Server;
let jwksUrl: string;
let verifiers: Record<'hs' | 'static' | 'jwks', PolicyHooks>;
const valid: Record<Family, string> = { HS256: mint('HS256'), RS256: mint('RS256'), ES256: mint('ES256'), EdDSA: mint('EdDSA') };

beforeAll(async () => {
  const publicJwks = await Promise.all(
    (['RS256', 'ES256', 'EdDSA'] as const).map(async (family) => ({ ...(await exportJWK(publicKeyOf(family))), kid: KIDS[family], alg: family, use: 'sig' })),
  );
  jwks = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: publicJwks }));
  });
  await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve));
  jwksUrl = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks.json`;
  verifiers = {
    hs: verifier({ algorithms: ['HS256'], secret: SECRET }),
    static: verifier({ algorithms: ['RS256', 'ES256', 'EdDSA'], publicKeys: publicJwks.map((k) => JSON.stringify(k)), typ: 'at+jwt' }),
    jwks: verifier({ algorithms: ['RS256', 'ES256', 'EdDSA'], jwksUrl, typ: 'at+jwt' }),
  };
});
afterAll(async () => {
  await new Promise<void>((resolve) => jwks.close(() => resolve()));
  await stores.close();
});

function publicKeyOf(family: Exclude<Family, 'HS256'>): KeyObject {
  return { RS256: rsa.publicKey, ES256: ec.publicKey, EdDSA: ed.publicKey }[family];
}

const VERIFIERS: Record<Family, ('hs' | 'static' | 'jwks')[]> = { HS256: ['hs'], RS256: ['static', 'jwks'], ES256: ['static', 'jwks'], EdDSA: ['static', 'jwks'] };
const family = fc.constantFrom<Family>('HS256', 'RS256', 'ES256', 'EdDSA');

describe('fuzz: JWT verifier', () => {
  it('accepts the valid tokens it is given (the baseline the mutations start from)', async () => {
    for (const f of Object.keys(valid) as Family[]) {
      for (const v of VERIFIERS[f]) expect(await authenticate(verifiers[v], valid[f]), `${f} with ${v}`).toBe('accepted');
    }
    // Each bad claim and header is refused on its own, signed with the right key.
    for (const f of Object.keys(valid) as Family[]) {
      for (const [name, claims] of BAD_CLAIMS) {
        const outcome = await authenticate(verifiers[VERIFIERS[f][0]!], mint(f, {}, claims()));
        expect(outcome, `${f}: ${name}`).toBeInstanceOf(RampartError);
      }
    }
  });

  it('random mutations of valid tokens are never accepted (unless they are no-ops), and are refused with a 401', async () => {
    let noOps = 0;
    await fc.assert(
      fc.asyncProperty(family, mutations, async (f, list) => {
        const original = valid[f];
        const token = list.reduce((t, mutate) => mutate(t, f), original);
        const noOp = isNoOp(original, token);
        if (noOp) noOps++;
        for (const v of VERIFIERS[f]) {
          const outcome = await authenticate(verifiers[v], token);
          if (outcome === 'accepted') {
            if (!noOp) throw new Error(`${v} accepted a mutated ${f} token: ${JSON.stringify(token)} (from ${original})`);
          } else assertRefusal(outcome);
        }
      }),
      fuzz(1500),
    );
    expect(noOps).toBeLessThan(1500 / 2);
  }, FUZZ_TIMEOUT);
});

describe('fuzz: JWT verifier over HTTP', () => {
  let up: TestUpstream;
  let gw: TestGateway;
  let pool: Pool;
  beforeAll(async () => {
    up = await startUpstream();
    gw = await startGateway({
      upstreams: { app: { targets: [{ url: up.url }] } },
      routes: [{ name: 'api', match: { path: '/api/*' }, upstream: 'app', policies: { jwt: { algorithms: ['HS256'], secret: SECRET, issuer: ISSUER, audience: AUDIENCE } } }],
    });
    pool = new Pool(gw.url, { connections: 4, headersTimeout: 5000, bodyTimeout: 5000 });
  });
  afterAll(async () => {
    await pool?.close();
    await gw?.close();
    await up?.close();
  });

  it('a mutated token sent to the gateway gets 401 problem+json and never reaches the upstream', async () => {
    const original = valid.HS256;
    expect((await pool.request({ method: 'GET', path: '/api/x', headers: { authorization: `Bearer ${original}` } }).then(async (r) => (await r.body.dump(), r.statusCode)))).toBe(200);
    const before = up.requests.length;
    let forwarded = 0;
    await fc.assert(
      fc.asyncProperty(mutations, async (list) => {
        const token = list.reduce((t, mutate) => mutate(t, 'HS256'), original);
        // Characters no header value may carry are refused by the client itself: the direct property covers them.
        fc.pre(/^[\x21-\x7e]*( [\x21-\x7e]+)*$/.test(token));
        const res = await pool.request({ method: 'GET', path: '/api/x', headers: { authorization: `Bearer ${token}` } });
        const text = await res.body.text();
        if (res.statusCode === 200) {
          if (!isNoOp(original, token)) throw new Error(`the gateway accepted a mutated token: ${JSON.stringify(token)}`);
          forwarded++;
          return;
        }
        expect(res.statusCode, text).toBe(401);
        expect(res.headers['content-type']).toBe('application/problem+json; charset=utf-8');
        expect(['RMP_AUTH_TOKEN_INVALID', 'RMP_AUTH_TOKEN_EXPIRED', 'RMP_AUTH_INVALID_REQUEST']).toContain((JSON.parse(text) as { code: string }).code);
      }),
      fuzz(200, { endOnFailure: true }),
    );
    expect(up.requests.length - before).toBe(forwarded);
  }, FUZZ_TIMEOUT);
});
