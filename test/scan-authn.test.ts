import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPair, jwtVerify, SignJWT } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { authenticationCheck } from '../src/scanner/checks/authentication.js';
import { GARBAGE_TOKEN, isApiSuccess, isRefusal } from '../src/scanner/checks/authn-common.js';
import { jwtCheck } from '../src/scanner/checks/jwt.js';
import { BURST, rateLimitCheck } from '../src/scanner/checks/rate-limit.js';
import { userEnumerationCheck } from '../src/scanner/checks/user-enumeration.js';
import { createHttpClient } from '../src/scanner/http.js';
import { CHECKS, runScan, type RunOptions, type ScanResult } from '../src/scanner/runner.js';
import { severityRank, type Check, type Finding } from '../src/scanner/types.js';
import { AUDIENCE, ISSUER, LOGIN_LIMIT, WEAK_SECRET } from './fixtures/vulnerable/auth.js';
import { startVulnerableApi, type VulnerableApi, type Vulnerabilities } from './fixtures/vulnerable/index.js';
import { startIdentityGateway, type IdentityGateway } from './helpers/identity.js';
import { startUpstream, type TestUpstream } from './helpers/gateway.js';

/** The authentication checks (authentication, jwt, user-enumeration, rate-limit) against the vulnerable fixture. */

const MINE = [authenticationCheck, jwtCheck, userEnumerationCheck, rateLimitCheck];
const MY_CHECKS = new Set(MINE.map((c) => c.id));

const open: { close(): Promise<void> }[] = [];
let dir: string | undefined;
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

const quiet = { debug: () => {}, warn: () => {} };

function docFile(doc: unknown): string {
  dir ??= mkdtempSync(join(tmpdir(), 'rampart-scan-authn-'));
  const file = join(dir, `api-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, JSON.stringify(doc));
  return file;
}

interface Scan {
  api: VulnerableApi;
  result: ScanResult;
  /** Requests the fixture received while the checks ran (after the document, the base URL and the logins). */
  checkRequests: VulnerableApi['requests'];
}

interface ScanSettings {
  /** --login as alice (and bob as caller B with 'ab'); default 'a'. */
  login?: 'a' | 'ab' | false;
  /** --auth, made from the started fixture. */
  auth?: (api: VulnerableApi) => Promise<string>;
  openapi?: boolean;
  destructive?: boolean;
  checks?: readonly Check[];
  /** One request before the scan: shifts which requests `throttleEveryOther` throttles. */
  shift?: boolean;
}

async function scan(switches: Partial<Vulnerabilities>, settings: ScanSettings = {}): Promise<Scan> {
  const api = await startVulnerableApi(switches);
  open.push(api);
  if (settings.shift === true) await (await fetch(new URL('/health', api.url))).arrayBuffer();
  const login = settings.login ?? 'a';
  const run: RunOptions = {
    target: new URL(api.url),
    http: createHttpClient({ rate: 1000, budget: 500, timeoutMs: 5000, maxBodyBytes: 65536, insecure: false, logger: quiet, verbose: false }),
    logger: quiet,
    options: { destructive: settings.destructive ?? false },
    checks: settings.checks ?? MINE,
    ...(settings.openapi === false ? {} : { openapi: docFile(api.openapi) }),
    ...(settings.auth !== undefined ? { auth: await settings.auth(api) } : {}),
    ...(login === false
      ? {}
      : { login: { path: '/api/login', user: 'alice', password: 'alice-password-1', ...(login === 'ab' ? { userB: 'bob', passwordB: 'bob-password-1' } : {}) } }),
  };
  let before = 0;
  const progress = (p: { done: number }) => {
    if (p.done === 0) before = api.requests.length;
  };
  try {
    const result = await runScan({ ...run, progress });
    return { api, result, checkRequests: api.requests.slice(before) };
  } finally {
    await run.http.close();
  }
}

const mine = (result: ScanResult) => result.findings.filter((f) => MY_CHECKS.has(f.check));
const mediumOrHigher = (findings: Finding[]) => findings.filter((f) => severityRank(f.severity) >= severityRank('medium'));
const skipsOf = (result: ScanResult, check: string) => result.stats.skipped.filter((s) => s.check === check).map((s) => s.reason);

describe('each switch → its finding', () => {
  const cases: {
    switch: keyof Vulnerabilities;
    check: string;
    id: string;
    severity: Finding['severity'];
    owasp: Finding['owasp'];
    request: RegExp;
    detail: RegExp;
    destructive?: boolean;
    /** Found by the same switch too. */
    also?: string[];
  }[] = [
    { switch: 'authMissing', check: 'authentication', id: 'auth.missing', severity: 'high', owasp: 'API2:2023', request: /^GET \/api\/reports HTTP\/1\.1/, detail: /GET \/api\/reports needs credentials.*answered 200/ },
    { switch: 'tokenInQuery', check: 'authentication', id: 'auth.token-in-query', severity: 'medium', owasp: 'API2:2023', request: /^GET \/api\/me\?access_token=\*\*\*\* HTTP\/1\.1/, detail: /\?access_token= .*refuses an anonymous caller \(401\)/ },
    { switch: 'jwtAlgNone', check: 'jwt', id: 'jwt.alg-none', severity: 'critical', owasp: 'API2:2023', request: /^GET \/api\/me HTTP\/1\.1\n.*authorization: Bearer \*\*\*\*/s, detail: /"alg":"none"/ },
    { switch: 'jwtHsPublicKey', check: 'jwt', id: 'jwt.hs256-public-key', severity: 'critical', owasp: 'API2:2023', request: /^GET \/api\/me HTTP\/1\.1/, detail: /PEM \(SPKI\) text of the published key fixture-1 \(\/\.well-known\/jwks\.json\)/ },
    { switch: 'jwtWeakSecret', check: 'jwt', id: 'jwt.weak-secret', severity: 'critical', owasp: 'API2:2023', request: /^GET \/api\/me HTTP\/1\.1/, detail: /HS256 token verifies with the secret "s\*\*\*\*t" \(6 characters\)/ },
    { switch: 'jwtNoExp', check: 'jwt', id: 'jwt.no-exp', severity: 'medium', owasp: 'API2:2023', request: /^GET \/api\/me HTTP\/1\.1/, detail: /no exp claim \(claims: role, name, sub, iss, aud, iat, jti\)/ },
    { switch: 'jwtNoVerify', check: 'jwt', id: 'jwt.signature-not-verified', severity: 'critical', owasp: 'API2:2023', request: /^GET \/api\/me HTTP\/1\.1/, detail: /claim added to its payload \("rampart_scan"\) and its old signature was accepted on GET \/api\/me \(200\)/ },
    { switch: 'logoutNoRevoke', check: 'jwt', id: 'jwt.valid-after-logout', severity: 'medium', owasp: 'API2:2023', request: /^GET \/api\/me HTTP\/1\.1/, detail: /logged out \(POST \/api\/logout answered 204\).*still accepted/ },
    { switch: 'loginNoRateLimit', check: 'rate-limit', id: 'ratelimit.none', severity: 'medium', owasp: 'API4:2023', request: /^POST \/api\/login HTTP\/1\.1/, detail: new RegExp(`^${BURST} failed logins .*\\(${BURST}× 401\\)`) },
    { switch: 'loginThrottleNo429', check: 'rate-limit', id: 'ratelimit.no-429', severity: 'low', owasp: 'API4:2023', request: /^POST \/api\/login HTTP\/1\.1/, detail: /got 503 without Retry-After where 429/ },
    { switch: 'loginNoRetryAfter', check: 'rate-limit', id: 'ratelimit.no-retry-after', severity: 'low', owasp: 'API4:2023', request: /^POST \/api\/login HTTP\/1\.1/, detail: /got 429 without a Retry-After header/ },
    { switch: 'userEnumeration', check: 'user-enumeration', id: 'enumeration.login', severity: 'medium', owasp: 'API2:2023', request: /^POST \/api\/login HTTP\/1\.1/, detail: /wrong password for alice \(who exists\) got 401 .*Wrong password.*an unknown user got 401 .*Unknown user/ },
    { switch: 'userEnumeration', check: 'user-enumeration', id: 'enumeration.register', severity: 'medium', owasp: 'API2:2023', request: /^POST \/api\/register HTTP\/1\.1/, detail: /Registering alice \(who exists\) got 409 .*taken.*a new name got 201/, destructive: true, also: ['enumeration.login'] },
  ];
  for (const c of cases) {
    it(`${c.switch}${c.destructive === true ? ' (--destructive)' : ''} → ${c.id} (${c.severity})`, async () => {
      const { result } = await scan({ [c.switch]: true }, { destructive: c.destructive ?? false });
      const found = result.findings.filter((f) => f.id === c.id);
      expect(found, JSON.stringify(result.findings.map((f) => f.id))).toHaveLength(1);
      const f = found[0]!;
      expect(f).toMatchObject({ check: c.check, severity: c.severity, owasp: c.owasp });
      expect(f.detail).toMatch(c.detail);
      expect(f.evidence.request).toMatch(c.request);
      expect(f.evidence.response).toMatch(/^HTTP\/1\.1 \d{3}/);
      expect(f.remediation.length).toBeGreaterThan(40);
      // No credential in any report field: tokens are masked, passwords never shown.
      const text = JSON.stringify(f);
      expect(text).not.toMatch(/eyJ[\w-]+\.[\w-]+/);
      expect(text).not.toContain('alice-password-1');
      // Only its own problem, of medium or higher (a switch for a low finding: none at all).
      expect(mediumOrHigher(result.findings.filter((x) => x.id !== c.id && !(c.also ?? []).includes(x.id)))).toEqual([]);
      expect(result.stats.incompleteChecks).toEqual([]);
    });
  }

  it('the weak secret is cracked offline: no request for it, and the secret never appears unmasked', async () => {
    const { result, checkRequests } = await scan({ jwtWeakSecret: true }, { login: false, auth: async (api) => `Authorization: Bearer ${await api.auth.tokenFor('alice')}`, checks: [jwtCheck] });
    const weak = result.findings.find((f) => f.id === 'jwt.weak-secret')!;
    expect(weak.evidence.request).toMatch(/^GET \/api\/me HTTP\/1\.1/); // the baseline exchange shows the token is the server's
    expect(JSON.stringify(weak)).not.toContain(`"${WEAK_SECRET}"`);
    // The baseline (caller A, anonymous, garbage), the tampered and the unsigned token: nothing else
    // (no JWKS for an HS256 token, nothing for the cracking).
    expect(checkRequests.map((r) => `${r.method} ${r.path}`)).toEqual(Array(5).fill('GET /api/me'));
  });
});

describe('every authentication switch at once (--destructive)', () => {
  it('each check finds its vulnerabilities; a signature that is never checked is reported once, as the cause', async () => {
    const all = { authMissing: true, tokenInQuery: true, jwtAlgNone: true, jwtHsPublicKey: true, jwtWeakSecret: true, jwtNoExp: true, jwtNoVerify: true, logoutNoRevoke: true, loginNoRateLimit: true, userEnumeration: true };
    const { result } = await scan(all, { login: 'ab', destructive: true });
    // alg none and the key confusion pass only because no signature is checked: the cause is the
    // finding (jwt.signature-not-verified); an HS256 token has no public key to confuse anyway.
    expect(mine(result).map((f) => f.id).sort()).toEqual([
      'auth.missing',
      'auth.token-in-query',
      'enumeration.login',
      'enumeration.register',
      'jwt.no-exp',
      'jwt.signature-not-verified',
      'jwt.valid-after-logout',
      'jwt.weak-secret',
      'ratelimit.none',
    ]);
    expect(result.stats.incompleteChecks).toEqual([]);
  });
});

describe('credentials in URLs', () => {
  it('--verbose logs the token-in-query probes with the token masked; the report too', async () => {
    const api = await startVulnerableApi({ tokenInQuery: true });
    open.push(api);
    const token = await api.auth.tokenFor('alice');
    const lines: string[] = [];
    const logger = { debug: (m: string) => lines.push(m), warn: (m: string) => lines.push(m) };
    const http = createHttpClient({ rate: 1000, budget: 100, timeoutMs: 5000, maxBodyBytes: 65536, insecure: false, logger, verbose: true });
    const result = await runScan({ target: new URL(api.url), http, logger, checks: [authenticationCheck], openapi: docFile(api.openapi), auth: `Authorization: Bearer ${token}` }).finally(() => http.close());
    expect(result.findings.map((f) => f.id)).toEqual(['auth.token-in-query']);
    expect(lines.filter((l) => l.includes('access_token=')).length).toBeGreaterThanOrEqual(2); // sent and answered
    expect(lines.join('\n')).toContain('access_token=****');
    expect(lines.join('\n')).not.toContain(token);
    expect(JSON.stringify(result)).not.toContain(token);
  });
});

describe('the secure variant', () => {
  for (const destructive of [false, true]) {
    it(`none of the authentication findings${destructive ? ' (--destructive)' : ''}; the burst meets 429 with Retry-After`, async () => {
      const { result, checkRequests } = await scan({}, { login: 'ab', destructive });
      expect(mine(result)).toEqual([]);
      expect(mediumOrHigher(result.findings)).toEqual([]);
      expect(result.stats.incompleteChecks).toEqual([]);
      // Every part decided: nothing skipped for want of an input or a decision.
      expect(result.stats.skipped.filter((s) => MY_CHECKS.has(s.check)).filter((s) => !/only with --destructive/.test(s.reason))).toEqual([]);
      // The burst stopped at the limit: the fixture allows LOGIN_LIMIT logins a minute, the scan made some before.
      const logins = checkRequests.filter((r) => r.method === 'POST' && r.path === '/api/login');
      expect(logins.length).toBeLessThan(BURST);
      expect(logins.length).toBeGreaterThanOrEqual(LOGIN_LIMIT - 1);
      if (!destructive) expect(checkRequests.every((r) => r.method === 'GET' || ['/api/login', '/api/logout'].includes(r.path))).toBe(true);
      else expect(checkRequests.some((r) => r.method === 'POST' && r.path === '/api/register')).toBe(true);
    });
  }
});

describe('forged tokens are judged only against a clean baseline', () => {
  it('a token the server refuses: no endpoint accepts caller A, so alg none (which the fixture takes) is not reported', async () => {
    const { privateKey } = await generateKeyPair('RS256');
    // The fixture's claims, signed by a key it does not know: refused; its unsigned twin would pass.
    const foreign = await new SignJWT({ role: 'user', name: 'alice' }).setProtectedHeader({ alg: 'RS256', kid: 'fixture-1' }).setSubject('u-alice').setIssuer(ISSUER).setAudience(AUDIENCE).setIssuedAt().setExpirationTime('15m').setJti('j-1').sign(privateKey);
    const { result, api } = await scan({ jwtAlgNone: true }, { login: false, auth: () => Promise.resolve(`Authorization: Bearer ${foreign}`) });
    expect(result.findings.filter((f) => f.check === 'jwt')).toEqual([]);
    expect(skipsOf(result, 'jwt').some((r) => /no endpoint was found that accepts caller A/.test(r))).toBe(true);
    // Positive control: the same fixture does take the unsigned token (so the check would have found it).
    const { UnsecuredJWT, decodeJwt } = await import('jose');
    expect(await api.auth.verify(new UnsecuredJWT(decodeJwt(foreign)).encode())).toMatchObject({ sub: 'u-alice' });
  });

  it('a server that takes any bearer string: no forged-token finding, the check says why', async () => {
    const { privateKey } = await generateKeyPair('RS256');
    const token = await new SignJWT({}).setProtectedHeader({ alg: 'RS256' }).setSubject('u-1').setExpirationTime('15m').sign(privateKey);
    const server = createServer((req, res) => {
      const ok = req.url === '/me' && /^Bearer \S+$/.test(req.headers.authorization ?? '');
      res.writeHead(ok ? 200 : req.url === '/me' ? 401 : 404, { 'content-type': 'application/json' });
      res.end(ok ? '{"id":"u-1"}' : '{"error":"no"}');
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    open.push({ close: () => new Promise((r) => server.close(() => r())) });
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    const doc = { openapi: '3.1.0', info: { title: 't', version: '1' }, security: [{ b: [] }], paths: { '/me': { get: { responses: { '200': { description: 'me' } } } } }, components: { securitySchemes: { b: { type: 'http', scheme: 'bearer' } } } };
    const http = createHttpClient({ rate: 1000, budget: 100, timeoutMs: 5000, maxBodyBytes: 65536, insecure: false, logger: quiet, verbose: false });
    const result = await runScan({ target: new URL(url), http, logger: quiet, checks: MINE, openapi: docFile(doc), auth: `Authorization: Bearer ${token}` }).finally(() => http.close());
    expect(result.findings).toEqual([]); // the tampered, unsigned and HS256 tokens would all have got 200
    expect(skipsOf(result, 'jwt')).toContain('no decision on forged tokens: a garbage bearer token got 200 on /me');
  });
});

describe('bounds', () => {
  it(`the burst is ${BURST} failed logins at most, one user name nobody has; it stops at the first 429`, async () => {
    const unlimited = await scan({ loginNoRateLimit: true }, { login: false, checks: [rateLimitCheck] });
    const burst = unlimited.checkRequests;
    expect(burst).toHaveLength(BURST);
    expect(burst.every((r) => r.method === 'POST' && r.path === '/api/login')).toBe(true);
    // From the document alone (no --login): the documented login is found.
    expect(unlimited.result.findings.map((f) => f.id)).toEqual(['ratelimit.none']);
    expect(unlimited.api.auth.accounts.map((a) => a.name)).toEqual(['alice', 'bob', 'root']);

    const limited = await scan({}, { login: false, checks: [rateLimitCheck] });
    expect(limited.checkRequests).toHaveLength(LOGIN_LIMIT + 1); // LOGIN_LIMIT failures, then the 429
    expect(limited.result.findings).toEqual([]);
  });

  it('all four checks together: at most 70 requests in safe mode (burst included), every switch on or off', async () => {
    const counts: Record<string, number> = {};
    for (const [name, switches, destructive] of [
      ['secure', {}, false],
      ['no login limit', { loginNoRateLimit: true }, false],
      ['every authentication switch', { authMissing: true, tokenInQuery: true, jwtAlgNone: true, jwtHsPublicKey: true, jwtNoExp: true, logoutNoRevoke: true, loginNoRateLimit: true, userEnumeration: true }, false],
      ['no login limit, --destructive', { loginNoRateLimit: true }, true],
    ] as [string, Partial<Vulnerabilities>, boolean][]) {
      const { checkRequests, result } = await scan(switches, { login: 'ab', destructive });
      counts[name] = checkRequests.length;
      expect(result.stats.incompleteChecks).toEqual([]);
      if (!destructive) expect(checkRequests.length, name).toBeLessThanOrEqual(70);
    }
    console.log('authn check requests against the fixture:', JSON.stringify(counts));
  });
});

describe('skips: what is missing is named', () => {
  it('no document, no caller: every check says what it needs and sends nothing', async () => {
    const { result, checkRequests } = await scan({ loginNoRateLimit: true, userEnumeration: true, jwtAlgNone: true }, { login: false, openapi: false });
    expect(result.findings).toEqual([]);
    expect(checkRequests).toEqual([]);
    expect(skipsOf(result, 'authentication')).toEqual([
      'auth.missing needs an OpenAPI document (--openapi) that says which operations need credentials',
      'auth.token-in-query needs caller A with a bearer token (--auth or --login)',
    ]);
    expect(skipsOf(result, 'jwt')).toEqual(['needs caller A (--auth with a bearer JWT, or --login)']);
    expect(skipsOf(result, 'user-enumeration')).toEqual(['needs --login (caller A is the user known to exist)']);
    expect(skipsOf(result, 'rate-limit')).toEqual(['no login operation known (pass --login, or --openapi with a documented login)']);
  });

  it('--auth without --login: the token checks run, the logout and enumeration checks are skipped; writes wait for --destructive', async () => {
    const { result, api } = await scan({ logoutNoRevoke: true, userEnumeration: true, jwtAlgNone: true }, { login: false, auth: async (api) => `Authorization: Bearer ${await api.auth.tokenFor('alice')}` });
    expect(result.findings.map((f) => f.id)).toEqual(['jwt.alg-none']);
    expect(skipsOf(result, 'jwt')).toEqual(['jwt.valid-after-logout needs --login (it logs in a session of its own to log out)']);
    expect(skipsOf(result, 'user-enumeration')).toEqual(['needs --login (caller A is the user known to exist)']);
    const writes = Object.values(api.openapi.paths as Record<string, Record<string, { security?: unknown[] }>>).flatMap((item) => Object.entries(item).filter(([m, op]) => m !== 'get' && m !== 'parameters' && op.security?.length !== 0));
    expect(skipsOf(result, 'authentication')).toEqual([`auth.missing: ${writes.length} write operation(s) not called anonymously (only with --destructive)`]);
  });

  it('no document but --login: the baseline is an endpoint the crawl saw refused, or a "current user" path next to the login', async () => {
    const { result } = await scan({ jwtAlgNone: true }, { openapi: false });
    expect(mine(result).map((f) => f.id)).toEqual(['jwt.alg-none']);
    expect(skipsOf(result, 'authentication')).toEqual(['auth.missing needs an OpenAPI document (--openapi) that says which operations need credentials']);

    // An API the crawl finds nothing of: the baseline is /users/me, next to /auth/login.
    const secret = new TextEncoder().encode('a secret no wordlist has: 7f3c9e1d2b4a6c8e');
    const seen: string[] = [];
    const revoked = new Set<string>();
    const server = createServer((req, res) => {
      seen.push(`${req.method} ${req.url} ${req.headers.authorization ?? '-'}`);
      void (async () => {
        if (req.method === 'POST' && req.url === '/auth/login') {
          const token = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('u-1').setExpirationTime('5m').sign(secret);
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ access_token: token }));
          return;
        }
        const m = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '');
        const valid = m !== null && !revoked.has(m[1]!) && (await jwtVerify(m[1]!, secret, { algorithms: ['HS256'] }).then(() => true, () => false));
        if (req.method === 'POST' && req.url === '/auth/logout' && valid) {
          revoked.add(m[1]!);
          res.writeHead(204).end();
          return;
        }
        const ok = req.url === '/users/me' && valid;
        res.writeHead(ok ? 200 : req.url === '/users/me' ? 401 : 404, { 'content-type': 'application/json' }).end(ok ? '{"id":"u-1"}' : '{}');
      })();
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    open.push({ close: () => new Promise((r) => server.close(() => r())) });
    const http = createHttpClient({ rate: 1000, budget: 200, timeoutMs: 5000, maxBodyBytes: 65536, insecure: false, logger: quiet, verbose: false });
    const stub = await runScan({ target: new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`), http, logger: quiet, checks: [jwtCheck], login: { path: '/auth/login', user: 'ada', password: 'pw' } }).finally(() => http.close());
    expect(stub.findings).toEqual([]);
    expect(stub.stats.skipped).toEqual([]); // every part decided, the logout at /auth/logout (next to the login) included
    expect(seen).toContain(`GET /users/me Bearer ${GARBAGE_TOKEN}`);
    expect(seen.filter((l) => l.startsWith('POST /auth/logout '))).toHaveLength(1);
  });

  it('registration is compared only with --destructive (it creates accounts)', async () => {
    const { result, api } = await scan({ userEnumeration: true }, { checks: [userEnumerationCheck] });
    expect(result.findings.map((f) => f.id)).toEqual(['enumeration.login']);
    expect(skipsOf(result, 'user-enumeration')).toEqual(['enumeration.register: POST /api/register creates accounts (only with --destructive)']);
    expect(api.auth.accounts).toHaveLength(3);
  });
});

describe('Rampart itself (the quickstart set-up: identity service, notes behind jwt, default login limit)', () => {
  for (const destructive of [false, true]) it(`no finding of medium or higher from any check${destructive ? ' (--destructive)' : ''}; the burst gets 429 with Retry-After from the 20-a-minute login limit`, async () => {
    const upstream: TestUpstream = await startUpstream();
    open.push(upstream);
    const id: IdentityGateway = await startIdentityGateway({
      backend: 'sqlite',
      upstreams: { notes: { targets: [{ url: upstream.url }] } },
      routes: [
        { name: 'notes', match: { path: '/api/notes', methods: ['GET', 'HEAD', 'POST'] }, upstream: 'notes', stripPrefix: '/api', policies: { jwt: { identity: true }, 'api-key': { identity: true } } },
        { name: 'note', match: { path: '/api/notes/:id', methods: ['GET', 'HEAD', 'PUT', 'DELETE'] }, upstream: 'notes', rewrite: '/notes/:id', policies: { jwt: { identity: true }, 'api-key': { identity: true } } },
      ],
    });
    open.push(id);
    for (const email of ['ada@example.com', 'bob@example.com']) {
      expect((await id.call('POST', '/api/v1/auth/register', { json: { email, password: 'correct horse battery staple 42' } })).status).toBe(202);
    }
    const http = createHttpClient({ rate: 1000, budget: 500, timeoutMs: 10_000, maxBodyBytes: 65536, ca: id.ca, insecure: false, logger: quiet, verbose: false });
    const result = await runScan({
      target: new URL(id.url),
      http,
      logger: quiet,
      // With --destructive, only these checks: the methods check's DELETE on /api/v2/users/me
      // (documented GET only) deletes caller A's account on Rampart.
      checks: destructive ? CHECKS.filter((c) => ['headers', 'cors', ...MY_CHECKS].includes(c.id)) : CHECKS,
      openapi: 'examples/quickstart/api.openapi.yaml',
      options: { destructive },
      login: { path: '/api/v1/auth/login', user: 'ada@example.com', password: 'correct horse battery staple 42', userB: 'bob@example.com', passwordB: 'correct horse battery staple 42' },
    }).finally(() => http.close());
    expect(mediumOrHigher(result.findings)).toEqual([]);
    expect(mine(result)).toEqual([]);
    expect(result.stats.incompleteChecks).toEqual([]);
    // Each part decided (the rate-limit check would name a burst without a decision here).
    expect(result.stats.skipped.filter((s) => MY_CHECKS.has(s.check) && !/only with --destructive/.test(s.reason))).toEqual([]);
    if (destructive) expect(http.history.filter((r) => r.request.url.endsWith('/api/v1/auth/register')).map((r) => r.status)).toEqual([202, 202, 202]);
    const logins = http.history.filter((r) => r.request.method === 'POST' && r.request.url.endsWith('/api/v1/auth/login'));
    const limited = logins.find((r) => r.status === 429)!;
    expect(limited, logins.map((r) => r.status).join(',')).toBeDefined();
    expect(limited.headers['retry-after']).toMatch(/^\d+$/);
    expect(logins.length).toBeLessThanOrEqual(6 + BURST);
    // The forged tokens met Rampart's jwt policy: refused (none, HS256 with the Ed25519 key, tampered, after logout).
    const forged = http.history.filter((r) => r.request.url.endsWith('/api/notes') && r.request.headers.authorization !== undefined && r.status === 401);
    expect(forged.length).toBeGreaterThanOrEqual(5);
  }, 60_000);
});

describe('auth.missing: a 2XX without credentials is a finding only when it is a real answer', () => {
  const doc = {
    openapi: '3.1.0',
    info: { title: 'reports', version: '1' },
    security: [{ b: [] }],
    components: { securitySchemes: { b: { type: 'http', scheme: 'bearer' } } },
    paths: { '/api/reports': { get: { responses: { '200': { description: 'reports' } } } }, '/api/users/me': { get: { responses: { '200': { description: 'the caller' } } } } },
  };
  const DATA: Record<string, unknown> = { '/api/reports': { reports: [{ id: 'r-1', title: 'Quarterly usage' }] }, '/api/users/me': { id: 'u-1', name: 'alice', role: 'user' } };
  const ALICE = 'Authorization: Bearer alice-opaque-token';
  /** What anonymous callers get, by kind of API (caller A always gets the data of a known path, 404 elsewhere). */
  const APIS: Record<string, (path: string) => { status: number; body: unknown }> = {
    // The bug: 200 with an error in the body, to every anonymous request.
    'unauthorized in a 200': () => ({ status: 200, body: { error: 'unauthorized' } }),
    // Words the scanner knows nothing of: only the comparisons can tell.
    'its own words in a 200': () => ({ status: 200, body: { result: 'nope', hint: 'sign the request' } }),
    // Authentication really missing: the control.
    open: (path) => (DATA[path] === undefined ? { status: 404, body: { error: 'not found' } } : { status: 200, body: DATA[path] }),
  };

  async function authMissing(anonymous: (path: string) => { status: number; body: unknown }, withA: boolean, everyone?: { status: number; body: unknown }): Promise<Finding[]> {
    const server = createServer((req, res) => {
      req.resume();
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      const isA = req.headers.authorization === ALICE.slice('Authorization: '.length);
      const answer = everyone ?? (isA ? (DATA[path] === undefined ? { status: 404, body: { error: 'not found' } } : { status: 200, body: DATA[path] }) : anonymous(path));
      res.writeHead(answer.status, { 'content-type': 'application/json' }).end(JSON.stringify(answer.body));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    open.push({ close: () => new Promise((r) => server.close(() => r())) });
    const http = createHttpClient({ rate: 1000, budget: 100, timeoutMs: 5000, maxBodyBytes: 65536, insecure: false, logger: quiet, verbose: false });
    const result = await runScan({ target: new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`), http, logger: quiet, checks: [authenticationCheck], openapi: docFile(doc), ...(withA ? { auth: ALICE } : {}) }).finally(() => http.close());
    expect(result.stats.incompleteChecks).toEqual([]);
    return result.findings.filter((f) => f.id === 'auth.missing');
  }

  for (const withA of [true, false]) {
    const who = withA ? 'with caller A' : 'without a caller';
    it(`an API answering 200 {"error":"unauthorized"} to anonymous callers is not missing authentication (${who})`, async () => {
      expect(await authMissing(APIS['unauthorized in a 200']!, withA)).toEqual([]);
      expect(await authMissing(APIS['its own words in a 200']!, withA)).toEqual([]);
    });

    it(`a catch-all answering the same 200 body to everything gives no finding (${who})`, async () => {
      expect(await authMissing(() => ({ status: 0, body: null }), withA, { status: 200, body: { status: 'ok', service: 'reports' } })).toEqual([]);
    });

    it(`an API that really answers without credentials: one finding per operation, confidence ${withA ? 'high (like caller A\'s answer)' : 'medium (no caller to compare with)'} (${who})`, async () => {
      const found = await authMissing(APIS.open!, withA);
      expect(found.map((f) => [f.location.url.replace(/^http:\/\/[^/]+/, ''), f.severity, f.confidence]).sort()).toEqual([
        ['/api/reports', 'high', withA ? 'high' : 'medium'],
        ['/api/users/me', 'high', withA ? 'high' : 'medium'],
      ]);
      expect(found[0]!.detail).toMatch(withA ? /like caller A's \(keys: / : /no caller to compare with/);
      expect(found[0]!.detail).toMatch(/a random path \(GET \/api\/rampart-scan-[0-9a-f]{8} → 404\)/);
    });
  }
});

describe('throttled answers (429, 503, Retry-After) decide nothing', () => {
  for (const destructive of [false, true]) {
    it(`throttleEveryOther: the secure variant gives no finding, whichever requests are throttled${destructive ? ' (--destructive)' : ''}`, async () => {
      for (const shift of [false, true]) {
        const { result, checkRequests } = await scan({ throttleEveryOther: true }, { login: 'ab', destructive, shift, checks: [authenticationCheck, jwtCheck, userEnumerationCheck] });
        expect(checkRequests.length).toBeGreaterThan(10);
        expect(mine(result), `shift: ${shift}`).toEqual([]);
        expect(result.stats.incompleteChecks).toEqual([]);
      }
    });
  }

  it('a 401 or 403 with Retry-After is no refusal, a 2XX with Retry-After no success; a 503 neither', () => {
    const answer = (status: number, headers: Record<string, string> = {}) => ({ status, headers, body: '{}', request: { method: 'GET', url: 'http://127.0.0.1/', headers: {} }, truncated: false, durationMs: 1 });
    expect([isRefusal(answer(401)), isRefusal(answer(403)), isApiSuccess(answer(200))]).toEqual([true, true, true]);
    expect([isRefusal(answer(401, { 'retry-after': '5' })), isRefusal(answer(403, { 'retry-after': '5' })), isRefusal(answer(429)), isRefusal(answer(503))]).toEqual([false, false, false, false]);
    expect(isApiSuccess(answer(200, { 'retry-after': '5' }))).toBe(false);
  });
});
