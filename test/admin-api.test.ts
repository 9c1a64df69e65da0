import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'node:http';
import * as OTPAuth from 'otpauth';
import { adminToken, startIdentityGateway, userToken, type IdentityGateway } from './helpers/identity.js';
import { startGateway, startUpstream, type TestGateway, type TestUpstream } from './helpers/gateway.js';
import { problemOf, send, type Response } from './helpers/http.js';

/**
 * The admin API on the admin listener (docs/admin-api.md): who may use it (admin token, identity
 * admins, console sessions with CSRF), what it shows (overview, events, routes, masked config),
 * what it changes (API keys), and that the gateway listener never serves it.
 */

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;

const ADMIN_TOKEN = 'an-admin-token-of-at-least-32-characters';
const ADMIN_EMAIL = 'boss@example.com';
const ADMIN_PASSWORD = 'the chief passphrase 2';

let upstream: TestUpstream;
let id: IdentityGateway;
let admin: string;

beforeAll(async () => {
  upstream = await startUpstream();
  id = await startIdentityGateway({
    backend: 'sqlite',
    admin: { enabled: true, listen: { host: '127.0.0.1', port: 0 }, token: ADMIN_TOKEN },
    upstreams: { notes: { targets: [{ url: upstream.url }] } },
    routes: [
      { name: 'notes', match: { path: '/api/notes/*' }, upstream: 'notes', policies: { 'api-key': { identity: true }, 'rate-limit': { limits: [{ name: 'tight', key: ['ip'], limit: 3, window: '1m' }] } } },
    ],
  });
  admin = id.gw.runtime.adminUrl!;
  await adminToken(id, ADMIN_EMAIL, ADMIN_PASSWORD);
});

afterAll(async () => {
  await id?.close();
  await upstream?.close();
});

type Call = { method?: string; json?: unknown; headers?: Record<string, string> };
function call(path: string, o: Call = {}): Promise<Response> {
  const headers: Record<string, string> = { ...o.headers };
  let body: string | undefined;
  if (o.json !== undefined) {
    body = JSON.stringify(o.json);
    headers['content-type'] = 'application/json';
    headers['content-length'] = String(Buffer.byteLength(body));
  }
  return send(admin, path, { method: o.method ?? 'GET', headers, ...(body !== undefined ? { body } : {}) });
}
const bearer = { authorization: `Bearer ${ADMIN_TOKEN}` };

async function consoleLogin(): Promise<{ cookie: string; csrf: string; setCookie: string }> {
  const res = await call('/api/session', { method: 'POST', json: { email: ADMIN_EMAIL, password: ADMIN_PASSWORD } });
  expect(res.status, res.text).toBe(201);
  const setCookie = String(res.headers['set-cookie']);
  return { cookie: setCookie.split(';')[0]!, csrf: res.json<Any>().csrfToken as string, setCookie };
}

describe('admin API: who may use it', () => {
  it('refuses callers without credentials, with a wrong token, and is not served on the gateway listener', async () => {
    const none = await call('/api/overview');
    expect(none.status).toBe(401);
    expect(problemOf(none).code).toBe('RMP_ADMIN_AUTH_REQUIRED');
    expect(none.headers['www-authenticate']).toBe('Bearer realm="rampart-admin"');
    const wrong = await call('/api/overview', { headers: { authorization: 'Bearer not-the-admin-token-but-long-enough-1234' } });
    expect(wrong.status).toBe(401);
    expect(problemOf(wrong).code).toBe('RMP_ADMIN_AUTH_INVALID');
    const garbage = await call('/api/overview', { headers: { authorization: 'Basic Zm9vOmJhcg==' } });
    expect(problemOf(garbage).code).toBe('RMP_ADMIN_AUTH_INVALID');
    const unknownCookie = await call('/api/overview', { headers: { cookie: `__Host-rampart-admin=${'A'.repeat(43)}` } });
    expect(problemOf(unknownCookie).code).toBe('RMP_ADMIN_AUTH_INVALID');
    // The gateway listener has no admin API, with or without the token, and forwards nothing.
    const before = upstream.requests.length;
    for (const path of ['/api/overview', '/api/session', '/api/apikeys', '/metrics']) {
      const res = await id.call('GET', path, { headers: bearer });
      expect(res.status, path).toBe(404);
      expect(problemOf(res).code).toBe('RMP_ROUTE_NOT_FOUND');
    }
    expect(upstream.requests.length).toBe(before);
    expect((await call('/api/overview', { headers: bearer })).status).toBe(200);
  });

  it('refuses identity users without the admin role, by password and by access token', async () => {
    const user = await userToken(id, 'mallory@example.com');
    const login = await call('/api/session', { method: 'POST', json: { email: 'mallory@example.com', password: 'a long enough passphrase 7' } });
    expect(login.status).toBe(403);
    expect(problemOf(login).code).toBe('RMP_ADMIN_FORBIDDEN');
    expect(login.headers['set-cookie']).toBeUndefined();
    const withToken = await call('/api/events', { headers: { authorization: `Bearer ${user.token}` } });
    expect(withToken.status).toBe(403);
    expect(problemOf(withToken).code).toBe('RMP_ADMIN_FORBIDDEN');
    const wrongPassword = await call('/api/session', { method: 'POST', json: { email: ADMIN_EMAIL, password: 'not it at all, sorry' } });
    expect(wrongPassword.status).toBe(401);
    expect(problemOf(wrongPassword).code).toBe('RMP_ADMIN_AUTH_INVALID');
    // An identity admin's access token works as a bearer token (the CLI after a login).
    const boss = await id.call('POST', '/api/v1/auth/login', { json: { email: ADMIN_EMAIL, password: ADMIN_PASSWORD } });
    const ok = await call('/api/session', { headers: { authorization: `Bearer ${boss.json<{ access_token: string }>().access_token}` } });
    expect(ok.status).toBe(200);
    expect(ok.json<Any>().user.roles).toContain('admin');
  });

  it('console sessions: a Secure HttpOnly SameSite=Strict cookie, CSRF on changes, logout ends it', async () => {
    const s = await consoleLogin();
    expect(s.setCookie).toMatch(/^__Host-rampart-admin=[A-Za-z0-9_-]{43}; Max-Age=28800; Path=\/; HttpOnly; Secure; SameSite=Strict$/);
    const me = await call('/api/session', { headers: { cookie: s.cookie } });
    expect(me.status).toBe(200);
    expect(me.json<Any>()).toMatchObject({ user: { email: ADMIN_EMAIL, roles: ['admin'] }, csrfToken: s.csrf });
    const owner = (await call(`/api/users?email=${encodeURIComponent(ADMIN_EMAIL)}`, { headers: { cookie: s.cookie } })).json<Any>().items[0].id as string;
    const noCsrf = await call('/api/apikeys', { method: 'POST', headers: { cookie: s.cookie }, json: { ownerId: owner, name: 'ci' } });
    expect(noCsrf.status).toBe(403);
    expect(problemOf(noCsrf).code).toBe('RMP_ADMIN_CSRF');
    const wrongCsrf = await call('/api/apikeys', { method: 'POST', headers: { cookie: s.cookie, 'x-csrf-token': 'x'.repeat(43) }, json: { ownerId: owner, name: 'ci' } });
    expect(problemOf(wrongCsrf).code).toBe('RMP_ADMIN_CSRF');
    const out = await call('/api/session', { method: 'DELETE', headers: { cookie: s.cookie, 'x-csrf-token': s.csrf } });
    expect(out.status).toBe(204);
    expect(String(out.headers['set-cookie'])).toMatch(/^__Host-rampart-admin=; Max-Age=0;/);
    const after = await call('/api/session', { headers: { cookie: s.cookie } });
    expect(after.status).toBe(401);
    expect(problemOf(after).code).toBe('RMP_ADMIN_AUTH_INVALID');
  });
});

describe('admin API: a second factor', () => {
  it('an admin with TOTP on logs in to the console in two steps', async () => {
    const email = 'second@example.com';
    const password = 'another chief passphrase 3';
    const system = { id: 'system', roles: ['admin'], sid: undefined, jti: undefined, exp: undefined };
    await id.gw.runtime.identity!.service.createUser(system, { email, roles: ['admin'], password }, { ip: '', userAgent: undefined, requestId: 'test' });
    const token = (await id.call('POST', '/api/v1/auth/login', { json: { email, password } })).json<{ access_token: string }>().access_token;
    const enrol = await id.call('POST', '/api/v1/users/me/mfa/enrol', { token, json: { currentPassword: password } });
    const { secret } = enrol.json<{ secret: string }>();
    const confirm = await id.call('POST', '/api/v1/users/me/mfa/confirm', { token, json: { code: OTPAuth.TOTP.generate({ secret: OTPAuth.Secret.fromBase32(secret) }) } });
    expect(confirm.status, confirm.text).toBe(200);
    const recovery = confirm.json<{ recoveryCodes: string[] }>().recoveryCodes[0]!;
    const first = await call('/api/session', { method: 'POST', json: { email, password } });
    expect(first.status).toBe(403);
    const challenge = problemOf(first);
    expect(challenge.code).toBe('RMP_MFA_REQUIRED');
    expect(first.headers['set-cookie']).toBeUndefined();
    const wrong = await call('/api/session/mfa', { method: 'POST', json: { mfaToken: challenge.mfaToken, code: '000000' } });
    expect(wrong.status).toBe(401);
    const again = problemOf(await call('/api/session', { method: 'POST', json: { email, password } }));
    const second = await call('/api/session/mfa', { method: 'POST', json: { mfaToken: again.mfaToken, recoveryCode: recovery } });
    expect(second.status, second.text).toBe(201);
    const cookie = String(second.headers['set-cookie']).split(';')[0]!;
    expect((await call('/api/session', { headers: { cookie } })).json<Any>().user.email).toBe(email);
  });
});

describe('admin API: API keys', () => {
  it('creates a key whose secret is shown once, which works on the gateway until it is revoked', async () => {
    const s = await consoleLogin();
    const headers = { cookie: s.cookie, 'x-csrf-token': s.csrf };
    const owner = (await call(`/api/users?email=${encodeURIComponent(ADMIN_EMAIL)}`, { headers })).json<Any>().items[0].id as string;
    const created = await call('/api/apikeys', { method: 'POST', headers, json: { ownerId: owner, name: 'console key', expiresIn: '1d' } });
    expect(created.status, created.text).toBe(201);
    const { key, secret } = created.json() as { key: { id: string; prefix: string }; secret: string };
    expect(secret).toMatch(/^rmp_/);
    // Listed without the secret.
    const listed = await call(`/api/apikeys?userId=${owner}`, { headers });
    expect(listed.text).not.toContain(secret);
    expect(listed.json<Any>().items.map((k: { id: string }) => k.id)).toContain(key.id);
    const used = await send(id.url, '/api/notes/1', { headers: { 'x-api-key': secret }, ca: id.ca });
    expect(used.status).toBe(200);
    const revoked = await call(`/api/apikeys/${key.id}`, { method: 'DELETE', headers });
    expect(revoked.status).toBe(204);
    const refused = await send(id.url, '/api/notes/1', { headers: { 'x-api-key': secret }, ca: id.ca });
    expect(refused.status).toBe(401);
    const again = await call(`/api/apikeys/${key.id}`, { method: 'DELETE', headers });
    expect(problemOf(again).code).toBe('RMP_ADMIN_NOT_FOUND');
    // Both admin actions are security events with the admin as actor.
    const events = (await call('/api/events?type=authz_admin', { headers })).json<Any>().items as { actor: string; data: { keyId: string } }[];
    expect(events.filter((e) => e.data.keyId === key.id).map((e) => e.actor)).toEqual([owner, owner]);
  });

  it('a bad body is a 400 with pointers', async () => {
    const bad = await call('/api/apikeys', { method: 'POST', headers: bearer, json: { ownerId: 'x', name: 'n', extra: 1, expiresIn: 'soon' } });
    expect(bad.status).toBe(400);
    expect(problemOf(bad).code).toBe('RMP_ADMIN_BAD_REQUEST');
  });
});

describe('admin API: figures and events', () => {
  it('every denial is a security event, listed with filters and cursors; the overview counts it', async () => {
    const before = (await call('/api/overview?window=60', { headers: bearer })).json<Any>().summary;
    for (let i = 0; i < 3; i++) await send(id.url, '/api/notes/2', { ca: id.ca });
    const denied = await send(id.url, '/api/notes/2', { headers: { 'x-api-key': 'rmp_live_not-a-real-key-at-all' }, ca: id.ca });
    expect(denied.status).toBe(401);
    // Three without a key (401) and then a 429 from the tight per-IP limit (3 per minute)?
    // The api-key policy runs before the limit, so all four are 401s: one event each.
    const events = await call('/api/events?type=authn_&route=notes&limit=2', { headers: bearer });
    expect(events.status).toBe(200);
    const page1 = events.json() as { items: { id: string; type: string; route: string; data: { problem: string } }[]; nextCursor: string };
    expect(page1.items).toHaveLength(2);
    expect(page1.items.every((e) => e.type === 'authn_token_invalid' && e.route === 'notes')).toBe(true);
    const page2 = (await call(`/api/events?type=authn_&route=notes&limit=2&cursor=${page1.nextCursor}`, { headers: bearer })).json() as typeof page1;
    expect(page2.items).toHaveLength(2);
    expect(Number(page2.items[0]!.id)).toBeLessThan(Number(page1.items[1]!.id));
    const one = await call(`/api/events/${page1.items[0]!.id}`, { headers: bearer });
    expect(one.json<Any>()).toMatchObject({ id: page1.items[0]!.id, type: 'authn_token_invalid' });
    expect(problemOf(await call('/api/events/999999999', { headers: bearer })).code).toBe('RMP_ADMIN_NOT_FOUND');
    expect((await call('/api/events?level=LOUD', { headers: bearer })).status).toBe(400);
    // The overview sees them once their second is over.
    await waitFor(async () => {
      const now = (await call('/api/overview?window=60', { headers: bearer })).json<Any>().summary;
      return now.denials >= before.denials + 4 && now.deniedBy.some((d: { code: string }) => d.code === 'RMP_AUTH_REQUIRED');
    });
    const overview = (await call('/api/overview?window=60', { headers: bearer })).json<Any>();
    expect(overview.deniedByArea.some((a: { area: string }) => a.area === 'AUTH')).toBe(true);
    expect(overview.deniedByPolicy.some((d: { policy: string }) => d.policy === 'api-key')).toBe(true);
    expect(overview.summary.topDeniedClients[0].clientIp).toBe('127.0.0.1');
    expect(overview.series).toHaveLength(60);
  });

  it('the live stream sends a tick every second and each new security event', async () => {
    const stream = await openStream(admin, '/api/live', bearer);
    try {
      await stream.waitFor((t) => t.includes('event: tick'));
      await send(id.url, '/api/notes/3', { ca: id.ca });
      const text = await stream.waitFor((t) => /event: security\ndata: .*authn_token_invalid/.test(t));
      const line = text.split('\n').find((l) => l.startsWith('data: ') && l.includes('authn_token_invalid'))!;
      expect(JSON.parse(line.slice(6))).toMatchObject({ type: 'authn_token_invalid', route: 'notes', id: expect.stringMatching(/^r\d+$/) });
    } finally {
      stream.close();
    }
  });

  it('the live stream of a console session ends when the session is logged out', async () => {
    const s = await consoleLogin();
    const stream = await openStream(admin, '/api/live', { cookie: s.cookie });
    await stream.waitFor((t) => t.includes('event: tick'));
    expect((await call('/api/session', { method: 'DELETE', headers: { cookie: s.cookie, 'x-csrf-token': s.csrf } })).status).toBe(204);
    await stream.ended();
  });

  it('routes carry their policies and a protection summary; the config has every secret masked', async () => {
    const routes = (await call('/api/routes', { headers: bearer })).json<Any>().items as { name: string; policies: { name: string }[]; protection: { id: string; on: boolean; detail: string }[] }[];
    const notes = routes.find((r) => r.name === 'notes')!;
    expect(notes.policies.map((p) => p.name)).toContain('api-key');
    const by = Object.fromEntries(notes.protection.map((p) => [p.id, p]));
    expect(by.authentication).toMatchObject({ on: true, detail: 'api-key' });
    expect(by['rate-limit']!.on).toBe(true);
    expect(by['rate-limit']!.detail).toContain('tight 3/1m');
    expect(by.cors).toMatchObject({ on: true, detail: 'closed (no origins)' });
    expect(by.authorization!.on).toBe(false);
    // Built-in routes are described by what they run: the JWKS is public, the users API needs a token.
    const auth = (name: string) => routes.find((r) => r.name === name)!.protection.find((p) => p.id === 'authentication');
    expect(auth('identity-jwks')).toMatchObject({ on: false, detail: 'public by design (built-in)' });
    expect(auth('identity-users')).toMatchObject({ on: true, detail: 'jwt' });
    const config = await call('/api/config', { headers: bearer });
    expect(config.status).toBe(200);
    expect(config.text).not.toContain(ADMIN_TOKEN);
    const body = config.json<Any>();
    expect(body.config.admin.token).toBe('********');
    expect(body.config.identity.masterKey).toBe('********');
    expect(body.config.routes[0].name).toBe('notes');
  });
});

describe('admin API: alerts', () => {
  it('lists the rules with their state and the history of alerts fired', async () => {
    for (let i = 0; i < 25; i++) id.gw.runtime.events.emit({ type: 'authn_login_fail', level: 'WARN', description: 'test', clientIp: '203.0.113.77' });
    await waitFor(async () => (await call('/api/alerts', { headers: bearer })).json<Any>().history.length > 0);
    const alerts = (await call('/api/alerts', { headers: bearer })).json<Any>();
    expect(alerts.rules.map((r: { name: string }) => r.name)).toEqual(expect.arrayContaining(['credential-stuffing', 'token-reuse', 'upstream-5xx-ratio']));
    expect(alerts.rules.find((r: { name: string }) => r.name === 'credential-stuffing').firing).toBe(true);
    expect(alerts.history[0]).toMatchObject({ rule: 'credential-stuffing', group: '203.0.113.77', notifications: [{ target: 'log', status: 'sent' }] });
    const overview = (await call('/api/overview', { headers: bearer })).json<Any>();
    expect(overview.alerts.firing).toBeGreaterThanOrEqual(1);
  });
});

describe('admin API without the identity service', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway({ admin: { enabled: true, listen: { host: '127.0.0.1', port: 0 }, token: ADMIN_TOKEN }, routes: [] });
  });
  afterAll(async () => gw?.close());

  it('the admin token logs in to the console; identity endpoints say there is none; events come from the ring', async () => {
    const base = gw.runtime.adminUrl!;
    const login = await send(base, '/api/session', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: ADMIN_TOKEN }) });
    expect(login.status).toBe(201);
    const cookie = String(login.headers['set-cookie']).split(';')[0]!;
    const users = await send(base, '/api/users', { headers: { cookie } });
    expect(users.status).toBe(404);
    expect(problemOf(users).code).toBe('RMP_ADMIN_IDENTITY_DISABLED');
    const password = await send(base, '/api/session', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'a@example.com', password: 'whatever it is' }) });
    expect(problemOf(password).code).toBe('RMP_ADMIN_IDENTITY_DISABLED');
    const events = (await send(base, '/api/events?type=sys_startup', { headers: { cookie } })).json<Any>();
    expect(events.items[0]).toMatchObject({ type: 'sys_startup', id: expect.stringMatching(/^r\d+$/) });
    expect((await send(base, `/api/events/${events.items[0].id}`, { headers: { cookie } })).json<Any>().type).toBe('sys_startup');
    const wrong = await send(base, '/api/session', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: 'x'.repeat(40) }) });
    expect(problemOf(wrong).code).toBe('RMP_ADMIN_AUTH_INVALID');
  });
});

async function waitFor(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 100));
  }
}

function openStream(base: string, path: string, headers: Record<string, string>) {
  const url = new URL(path, base);
  let text = '';
  let finished = false;
  const waiters: (() => void)[] = [];
  const req = request({ host: url.hostname, port: url.port, path: url.pathname, headers: { ...headers, accept: 'text/event-stream' } }, (res) => {
    res.setEncoding('utf8');
    res.on('end', () => (finished = true));
    res.on('close', () => (finished = true));
    res.on('data', (chunk: string) => {
      text += chunk;
      for (const w of waiters.splice(0)) w();
    });
  });
  req.on('error', () => undefined);
  req.end();
  return {
    async waitFor(check: (text: string) => boolean, timeoutMs = 10_000): Promise<string> {
      const until = Date.now() + timeoutMs;
      while (!check(text)) {
        if (Date.now() > until) throw new Error(`stream did not deliver in time: ${text.slice(-500)}`);
        await new Promise<void>((r) => {
          waiters.push(r);
          setTimeout(r, 200);
        });
      }
      return text;
    },
    close: () => req.destroy(),
    ended: () => new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('stream still open')), 10_000);
      req.on('response', () => undefined);
      const check = () => (finished ? (clearTimeout(timer), resolve()) : setTimeout(check, 50));
      check();
    }),
  };
}
