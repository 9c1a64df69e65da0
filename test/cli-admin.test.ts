import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../src/cli/main.js';
import { CommandError, resolveTarget } from '../src/cli/management.js';
import type { LoadedConfig } from '../src/config/load.js';
import { closedPort, startUpstream, type TestUpstream } from './helpers/gateway.js';
import { problemOf, send } from './helpers/http.js';
import { startIdentityGateway, type IdentityGateway } from './helpers/identity.js';
import { killAll, runCli } from './helpers/process.js';
import { redisAvailable } from './helpers/services.js';

/**
 * The management commands against a running gateway (the admin API: its identity service and its
 * revocation store make the change, so the gateway refuses a revoked key on the next request), and
 * with --offline on the database (published through Redis when the config has it; without Redis,
 * running gateways see it when their cached look-up runs out, which the CLI says).
 */

const ADMIN_TOKEN = 'an-admin-token-of-at-least-32-characters';
const ADMIN_EMAIL = 'boss@example.com';

let dir: string;
let tokenFile: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'rampart-cli-admin-'));
  tokenFile = join(dir, 'admin-token');
  writeFileSync(tokenFile, ADMIN_TOKEN + '\n', { mode: 0o600 });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => killAll());

/** The CLI in process (as test/cli.test.ts does for these commands): exit code and output lines. */
async function cli(argv: string[]): Promise<{ code: number; stdout: string[]; stderr: string[]; ms: number }> {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const started = performance.now();
  const code = await main(argv, { out: (l) => stdout.push(l), err: (l) => stderr.push(l) });
  return { code, stdout, stderr, ms: performance.now() - started };
}

const notes = (upstream: TestUpstream) => ({
  upstreams: { notes: { targets: [{ url: upstream.url }] } },
  routes: [{ name: 'notes', match: { path: '/api/notes/*' }, upstream: 'notes', policies: { 'api-key': { identity: true } } }],
});

/** The gateway's answer to a request with the key, and its problem code when refused. */
async function useKey(id: IdentityGateway, key: string): Promise<[number, unknown]> {
  const res = await id.call('GET', '/api/notes/1', { headers: { 'x-api-key': key } });
  return [res.status, res.status === 200 ? undefined : problemOf(res).code];
}

describe('management commands through the admin API of a running gateway', () => {
  let upstream: TestUpstream;
  let id: IdentityGateway;
  let api: string[];

  beforeAll(async () => {
    upstream = await startUpstream();
    id = await startIdentityGateway({ backend: 'sqlite', admin: { enabled: true, listen: { host: '127.0.0.1', port: 0 }, token: ADMIN_TOKEN }, ...notes(upstream) });
    api = ['--admin-url', id.gw.runtime.adminUrl!, '--token-file', tokenFile, '-c', id.gw.configFile];
  });
  afterAll(async () => {
    await id?.close();
    await upstream?.close();
  });

  it('creates an API key, the gateway accepts it, revokes it, and the gateway refuses it on the next request (no restart)', async () => {
    // Bootstrap: the first admin straight into the database the running gateway uses.
    const boot = await cli(['users', 'create', '--admin', ADMIN_EMAIL, '--offline', '-c', id.gw.configFile]);
    expect(boot.code, boot.stderr.join('\n')).toBe(0);

    const made = await cli(['apikeys', 'create', '--user', ADMIN_EMAIL, '--name', 'ci', '--expires', '7d', ...api]);
    expect(made.code, made.stderr.join('\n')).toBe(0);
    expect(made.stdout[0]).toMatch(/^created API key ([0-9a-f-]{36}) for boss@example\.com \(scopes: none; expires \d{4}-\d\d-\d\dT[\d:.]+Z\)$/);
    expect(made.stdout[1]).toMatch(/^key: rmp_live_[0-9A-Za-z]{49}$/);
    const keyId = /API key ([0-9a-f-]{36})/.exec(made.stdout[0]!)![1]!;
    const key = made.stdout[1]!.slice('key: '.length);

    // Accepted twice: the second answer comes from the gateway's look-up cache (identity.apiKeys.cacheTtl, 15s).
    expect(await useKey(id, key)).toEqual([200, undefined]);
    expect(await useKey(id, key)).toEqual([200, undefined]);

    const revoked = await cli(['apikeys', 'revoke', keyId, ...api]);
    expect(revoked).toMatchObject({ code: 0, stdout: [`revoked ${keyId} (${key.slice(0, 17)}…)`], stderr: [] });
    // The very next request, with the look-up still cached: refused (the gateway's revocation store).
    expect(await useKey(id, key)).toEqual([401, 'RMP_AUTH_TOKEN_REVOKED']);

    const listed = await cli(['apikeys', 'list', '--user', ADMIN_EMAIL, ...api]);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toHaveLength(1);
    expect(listed.stdout[0]).toContain(`${keyId}  ${key.slice(0, 17)}…  revoked`);
    // Revoking again is no error (as offline); an unknown key is one line.
    expect(await cli(['apikeys', 'revoke', keyId, ...api])).toMatchObject({ code: 0, stdout: [`revoked ${keyId} (${key.slice(0, 17)}…)`] });
    expect(await cli(['apikeys', 'revoke', 'nope', ...api])).toMatchObject({ code: 1, stderr: ["rampart: no API key 'nope'"] });
    expect(await cli(['apikeys', 'create', '--user', 'nobody@example.com', ...api])).toMatchObject({ code: 1, stderr: ["rampart: no user 'nobody@example.com'"] });
    expect(await cli(['apikeys', 'create', '--user', ADMIN_EMAIL, '--scopes', 'everything', ...api])).toMatchObject({ code: 1, stderr: ['rampart: An API key cannot grant scopes its creator does not have: everything.'] });

    // Every change is an authz_admin event with the admin (token) as actor.
    const events = await send(id.gw.runtime.adminUrl!, '/api/events?type=authz_admin', { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    const mine = events.json<{ items: { description: string; actor: string }[] }>().items.filter((e) => e.actor === 'admin-token').map((e) => e.description);
    expect(mine).toEqual(expect.arrayContaining(['admin API: API key created', 'admin API: API key revoked']));
  });

  it('users, signing keys and clients print what they print offline', async () => {
    const second = await cli(['users', 'create', '--admin', 'Second@Example.com', ...api]);
    expect(second.code, second.stderr.join('\n')).toBe(0);
    expect(second.stdout[0]).toMatch(/^created admin [0-9a-f-]{36} \(second@example\.com\)$/);
    expect(second.stdout[1]).toMatch(/^one-time password: [A-Za-z2-9]{20}$/);
    expect(await cli(['users', 'create', '--admin', 'second@example.com', ...api])).toMatchObject({ code: 1, stderr: ['rampart: A user with this e-mail exists'] });

    const listed = await cli(['keys', 'list', ...api]);
    expect(listed.code, listed.stderr.join('\n')).toBe(0);
    expect(listed.stdout.map((l) => l.split(/\s+/)[0])).toEqual(['current', 'next']);
    const next = listed.stdout[1]!.split(/\s+/)[1]!;
    expect((await cli(['keys', 'rotate', ...api])).stdout[0]).toMatch(new RegExp(`^key ${next} signs from \\d{4}-`));
    expect(await cli(['keys', 'revoke', next, ...api])).toMatchObject({ code: 0, stdout: [`revoked ${next}; running gateways refuse its tokens from their next key refresh (identity.keys.refresh)`] });
    expect((await cli(['keys', 'list', ...api])).stdout.join('\n')).not.toContain(next);
    // The gateway serving the API withdrew it from its JWKS at once.
    const jwks = (await id.call('GET', '/.well-known/jwks.json')).json<{ keys: { kid: string }[] }>();
    expect(jwks.keys.map((k) => k.kid)).not.toContain(next);
    expect(await cli(['keys', 'revoke', 'no-such-kid', ...api])).toMatchObject({ code: 1, stderr: ["rampart: no published key 'no-such-kid'"] });

    const made = await cli(['clients', 'create', '--id', 'billing.v2', '--name', 'Billing service', '--scopes', 'orders:read,orders:write', ...api]);
    expect(made.code, made.stderr.join('\n')).toBe(0);
    expect(made.stdout[0]).toBe('created client billing.v2 (client_secret_basic; scopes: orders:read orders:write)');
    expect(made.stdout[1]).toMatch(/^client_secret: rmpcs_live_[0-9A-Za-z]{49}$/);
    const rotated = await cli(['clients', 'rotate-secret', 'billing.v2', '--overlap', '2h', ...api]);
    expect(rotated.stdout[0]).toMatch(/^client_secret: rmpcs_live_[0-9A-Za-z]{49}$/);
    expect(rotated.stdout[1]).toMatch(/^The previous secrets work until \d{4}-/);
    const clients = await cli(['clients', 'list', ...api]);
    expect(clients.stdout).toHaveLength(1);
    expect(clients.stdout[0]).toMatch(new RegExp(`^billing\\.v2  active    client_secret_basic  scopes orders:read orders:write  secrets rmpcs_live_\\w{8}… expiring until \\S+, rmpcs_live_\\w{8}… active$`));
    expect(await cli(['clients', 'create', '--id', 'billing.v2', '--name', 'x', '--scopes', 'a', ...api])).toMatchObject({ code: 1, stderr: ['rampart: A client with this id exists'] });
    expect(await cli(['clients', 'rotate-secret', 'nope', ...api])).toMatchObject({ code: 1, stderr: ["rampart: no client 'nope'"] });
    expect(await cli(['clients', 'delete', 'billing.v2', ...api])).toMatchObject({ code: 0, stdout: ['deleted client billing.v2; its tokens are refused'] });
    expect(await cli(['clients', 'delete', 'billing.v2', ...api])).toMatchObject({ code: 1, stderr: ["rampart: no client 'billing.v2'"] });
  });

  it('the management endpoints themselves: users changed, sessions ended, no private key material, events with the admin as actor', async () => {
    const admin = id.gw.runtime.adminUrl!;
    const call = (method: string, path: string, json?: unknown) =>
      send(admin, path, { method, headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(json !== undefined ? { 'content-type': 'application/json' } : {}) }, ...(json !== undefined ? { body: JSON.stringify(json) } : {}) });
    const made = await call('POST', '/api/users', { email: 'Carol@Example.com', roles: ['user'] });
    expect(made.status, made.text).toBe(201);
    const { user, oneTimePassword } = made.json<{ user: { id: string; email: string; roles: string[]; passwordChangeRequired: boolean }; oneTimePassword: string }>();
    expect(user).toMatchObject({ email: 'carol@example.com', roles: ['user'], passwordChangeRequired: true });
    expect(oneTimePassword).toMatch(/^[A-Za-z2-9]{20}$/);
    expect(problemOf(await call('POST', '/api/users', { email: 'x@example.com', extra: 1 })).code).toBe('RMP_ADMIN_BAD_REQUEST');
    expect((await call('PATCH', `/api/users/${user.id}`, { roles: ['user', 'auditor'] })).json()).toMatchObject({ roles: ['user', 'auditor'] });
    expect(problemOf(await call('PATCH', `/api/users/${user.id}`, {})).code).toBe('RMP_ADMIN_BAD_REQUEST');
    expect((await call('PATCH', `/api/users/${user.id}`, { status: 'disabled' })).json()).toMatchObject({ status: 'disabled' });
    expect((await call('POST', `/api/users/${user.id}/logout-all`)).status).toBe(204);
    expect((await call('POST', `/api/users/${user.id}/mfa-reset`)).status).toBe(204);
    expect((await call('POST', `/api/users/${user.id}/password-reset`)).json()).toMatchObject({ passwordChangeRequired: true });
    expect((await call('DELETE', `/api/users/${user.id}`)).status).toBe(204);
    for (const [method, path] of [['GET', `/api/users/${user.id}`], ['DELETE', `/api/users/${user.id}`], ['POST', `/api/users/${user.id}/logout-all`], ['POST', '/api/keys/AAAA/revoke'], ['GET', '/api/clients/nope'], ['GET', '/api/apikeys/nope']] as const) {
      const res = await call(method, path);
      expect([res.status, problemOf(res).code], `${method} ${path}`).toEqual([404, 'RMP_ADMIN_NOT_FOUND']);
    }
    const keys = await call('GET', '/api/keys');
    expect(keys.status).toBe(200);
    for (const k of keys.json<{ items: Record<string, unknown>[] }>().items) expect(Object.keys(k).sort()).toEqual(['activeFrom', 'alg', 'createdAt', 'kid', 'state']);
    expect(keys.text).not.toMatch(/"d"|private/i);
    // No credentials, no management.
    const anonymous = await send(admin, '/api/users', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'eve@example.com' }) });
    expect([anonymous.status, problemOf(anonymous).code]).toEqual([401, 'RMP_ADMIN_AUTH_REQUIRED']);
    const events = (await call('GET', '/api/events?type=authz_admin&limit=200')).json<{ items: { description: string; actor: string; subject: string | null }[] }>().items;
    const forCarol = events.filter((e) => e.subject === user.id).map((e) => `${e.actor} ${e.description}`);
    expect(forCarol.sort()).toEqual(
      [
        'admin API: user created',
        'admin API: user updated',
        'admin API: user updated',
        'admin API: every session of the user ended',
        'admin API: second factor removed',
        'admin API: password reset',
        'admin API: user deleted',
      ].map((d) => `admin-token ${d}`).sort(),
    );
  });

  it('a wrong token prints the problem detail; no credentials and no gateway say what to do; exit 1, never a silent fallback', async () => {
    const wrongFile = join(dir, 'wrong-token');
    writeFileSync(wrongFile, 'not-the-admin-token-but-long-enough-1234');
    const wrong = await cli(['keys', 'list', '--admin-url', id.gw.runtime.adminUrl!, '--token-file', wrongFile, '-c', id.gw.configFile]);
    expect(wrong).toMatchObject({ code: 1, stdout: [], stderr: [`rampart: the admin API at ${id.gw.runtime.adminUrl!} refused the credentials (401 RMP_ADMIN_AUTH_INVALID): The token is not accepted.`] });

    const saved = process.env.RAMPART_ADMIN_TOKEN;
    delete process.env.RAMPART_ADMIN_TOKEN;
    try {
      const none = await cli(['keys', 'list', '--admin-url', id.gw.runtime.adminUrl!, '-c', id.gw.configFile]);
      expect(none).toMatchObject({ code: 1, stdout: [] });
      expect(none.stderr).toEqual(["rampart: no admin credentials: set RAMPART_ADMIN_TOKEN or give --token-file FILE (the admin token, or an identity admin's access token); or use --offline to work on the database directly"]);
    } finally {
      if (saved !== undefined) process.env.RAMPART_ADMIN_TOKEN = saved;
    }

    const port = await closedPort();
    const down = await cli(['apikeys', 'revoke', 'some-id', '--admin-url', `http://127.0.0.1:${port}`, '--token-file', tokenFile, '-c', id.gw.configFile]);
    expect(down).toMatchObject({ code: 1, stdout: [] });
    expect(down.stderr).toEqual([`rampart: cannot reach the admin API at http://127.0.0.1:${port} (ECONNREFUSED): start the gateway (rampart start -c ${id.gw.configFile}), or use --offline to work on the database directly`]);
  });

  it('as a real process: RAMPART_ADMIN_URL and RAMPART_ADMIN_TOKEN from the environment', async () => {
    const started = performance.now();
    const listed = await runCli(['keys', 'list', '-c', id.gw.configFile], { env: { RAMPART_ADMIN_URL: id.gw.runtime.adminUrl!, RAMPART_ADMIN_TOKEN: ADMIN_TOKEN } });
    const ms = performance.now() - started;
    expect(listed.code, listed.stderr.join('\n')).toBe(0);
    expect(listed.stdout.length).toBeGreaterThanOrEqual(2);
    console.log(`CLI latency: keys list as a child process ${ms.toFixed(0)} ms`);
  });

  it('latency of one command in process, through the admin API and offline', async () => {
    const through: number[] = [];
    const offline: number[] = [];
    for (let i = 0; i < 5; i++) {
      through.push((await cli(['keys', 'list', ...api])).ms);
      offline.push((await cli(['keys', 'list', '--offline', '-c', id.gw.configFile])).ms);
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    console.log(`CLI latency (median of 5, in process): keys list through the admin API ${median(through).toFixed(1)} ms, --offline ${median(offline).toFixed(1)} ms`);
    expect(median(through)).toBeLessThan(2000);
  });
});

describe('a gateway without the identity service', () => {
  it('answers the management endpoints with 404 RMP_ADMIN_IDENTITY_DISABLED', async () => {
    const { startGateway } = await import('./helpers/gateway.js');
    const gw = await startGateway({ admin: { enabled: true, listen: { host: '127.0.0.1', port: 0 }, token: ADMIN_TOKEN }, routes: [] });
    try {
      for (const [method, path] of [['GET', '/api/keys'], ['POST', '/api/keys/rotate'], ['DELETE', '/api/clients/x'], ['POST', '/api/users/x/logout-all']] as const) {
        const res = await send(gw.runtime.adminUrl!, path, { method, headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
        expect([res.status, problemOf(res).code], `${method} ${path}`).toEqual([404, 'RMP_ADMIN_IDENTITY_DISABLED']);
      }
    } finally {
      await gw.close();
    }
  });
});

describe('the admin address, certificate and credentials', () => {
  const loaded = (admin: Record<string, unknown>, server: Record<string, unknown> = {}) =>
    ({ file: '/etc/rampart/rampart.yaml', dir: '/etc/rampart', config: { dataDir: './data', server, admin: { enabled: true, tls: false, listen: { host: '127.0.0.1', port: 9901 }, ...admin } } }) as unknown as LoadedConfig;
  const env = { RAMPART_ADMIN_TOKEN: ADMIN_TOKEN };

  it('comes from admin.listen (https with admin.tls, loopback for a wildcard address) unless given', () => {
    expect(resolveTarget({}, loaded({}), env)).toEqual({ url: 'http://127.0.0.1:9901', token: ADMIN_TOKEN, ca: undefined });
    expect(resolveTarget({}, loaded({ listen: { host: '0.0.0.0', port: 9443 }, tls: true }), env).url).toBe('https://127.0.0.1:9443');
    expect(resolveTarget({}, loaded({ listen: { host: '::', port: 9443 } }), env).url).toBe('http://[::1]:9443');
    expect(resolveTarget({ adminUrl: 'http://10.0.0.5:9901/' }, loaded({}), { ...env, RAMPART_ADMIN_URL: 'http://ignored:1' }).url).toBe('http://10.0.0.5:9901');
    expect(resolveTarget({}, undefined, { ...env, RAMPART_ADMIN_URL: 'http://127.0.0.2:9901' }).url).toBe('http://127.0.0.2:9901');
    expect(resolveTarget({ tokenFile }, loaded({}), {}).token).toBe(ADMIN_TOKEN);
  });

  it('refuses what cannot work, in one line', () => {
    const fails = (f: () => unknown) => {
      try {
        f();
      } catch (error) {
        expect(error).toBeInstanceOf(CommandError);
        return (error as Error).message;
      }
      throw new Error('expected a CommandError');
    };
    expect(fails(() => resolveTarget({}, loaded({ enabled: false }), env))).toBe('/etc/rampart/rampart.yaml has the admin listener off (admin.enabled: false): give --admin-url, or use --offline to work on the database directly');
    expect(fails(() => resolveTarget({ adminUrl: 'ftp://x' }, undefined, env))).toBe("the admin URL 'ftp://x' must be http(s)://host:port, with no credentials, query or fragment");
    expect(fails(() => resolveTarget({ adminUrl: 'http://u:p@x:1' }, undefined, env))).toMatch(/with no credentials/);
    // https with tls: auto trusts the development certificate in dataDir (here: missing, so said).
    expect(fails(() => resolveTarget({}, loaded({ tls: true }, { tls: 'auto' }), env))).toBe("cannot read the development certificate '/etc/rampart/data/tls/localhost.crt': no such file");
    expect(fails(() => resolveTarget({ ca: '/nope.pem', adminUrl: 'https://localhost:9901' }, undefined, env))).toBe("cannot read --ca '/nope.pem': no such file");
    expect(fails(() => resolveTarget({}, loaded({}), { RAMPART_ADMIN_TOKEN: 'has spaces in it' }))).toMatch(/b64token/);
  });
});

describe('over HTTPS (admin.tls): the development certificate is trusted by default', () => {
  it('keys list over https with the CA taken from the config\'s dataDir', async () => {
    const id = await startIdentityGateway({ backend: 'sqlite', admin: { enabled: true, tls: true, listen: { host: '127.0.0.1', port: 0 }, token: ADMIN_TOKEN } });
    try {
      const url = id.gw.runtime.adminUrl!;
      expect(url).toMatch(/^https:/);
      const listed = await cli(['keys', 'list', '--admin-url', url, '--token-file', tokenFile, '-c', id.gw.configFile]);
      expect(listed.code, listed.stderr.join('\n')).toBe(0);
      expect(listed.stdout.map((l) => l.split(/\s+/)[0])).toEqual(['current', 'next']);
      // Without the config (so without its certificate), the system's roots do not trust it: the failure says what to give.
      const wrong = await cli(['keys', 'list', '--admin-url', url, '--token-file', tokenFile, '-c', join(dir, 'no-such-config.yaml')]);
      expect(wrong.code).toBe(1);
      expect(wrong.stderr[0]).toMatch(/TLS failed .*--ca FILE/);
    } finally {
      await id.close();
    }
  });
});

const redisUp = await redisAvailable();

describe('--offline: revocations reach running gateways', () => {
  it.skipIf(!redisUp)('with redis in the config, published through the Redis revocation store: the running gateway refuses the key at once', async () => {
    const upstream = await startUpstream();
    const redis = { url: 'redis://127.0.0.1:6379', keyPrefix: `rampart-test:cli:${process.pid}:${Date.now()}:` };
    const id = await startIdentityGateway({ backend: 'sqlite', redis, ...notes(upstream) });
    try {
      const offline = ['--offline', '-c', id.gw.configFile];
      expect((await cli(['users', 'create', '--admin', ADMIN_EMAIL, ...offline])).code).toBe(0);
      const made = await cli(['apikeys', 'create', '--user', ADMIN_EMAIL, ...offline]);
      expect(made.code, made.stderr.join('\n')).toBe(0);
      const keyId = /API key ([0-9a-f-]{36})/.exec(made.stdout[0]!)![1]!;
      const key = made.stdout[1]!.slice('key: '.length);
      expect(await useKey(id, key)).toEqual([200, undefined]);
      const revoked = await cli(['apikeys', 'revoke', keyId, ...offline]);
      expect(revoked).toMatchObject({ code: 0, stderr: [] });
      // Published before the CLI returned; the invalidation message may take a moment to land.
      let answer = await useKey(id, key);
      for (let i = 0; i < 40 && answer[0] === 200; i++) answer = await useKey(id, key);
      expect(answer).toEqual([401, 'RMP_AUTH_TOKEN_REVOKED']);
    } finally {
      await id.close();
      await upstream.close();
    }
  });

  it('without redis: the CLI warns, and the running gateway refuses the key once its cached look-up runs out (identity.apiKeys.cacheTtl), with no restart', async () => {
    const upstream = await startUpstream();
    const id = await startIdentityGateway({ backend: 'sqlite', identity: { apiKeys: { cacheTtl: '2s' } }, ...notes(upstream) });
    try {
      const offline = ['--offline', '-c', id.gw.configFile];
      expect((await cli(['users', 'create', '--admin', ADMIN_EMAIL, ...offline])).code).toBe(0);
      const made = await cli(['apikeys', 'create', '--user', ADMIN_EMAIL, ...offline]);
      const keyId = /API key ([0-9a-f-]{36})/.exec(made.stdout[0]!)![1]!;
      const key = made.stdout[1]!.slice('key: '.length);
      expect(await useKey(id, key)).toEqual([200, undefined]);
      const cachedAt = Date.now();
      const revoked = await cli(['apikeys', 'revoke', keyId, ...offline]);
      expect(revoked.code).toBe(0);
      expect(revoked.stderr).toEqual([
        `warning: ${id.gw.configFile} has no redis, so the revocation reached the database only: gateways running now refuse the key once their cached look-up of it runs out (identity.apiKeys.cacheTtl, 2s); without --offline, the gateway refuses it on the next request`,
      ]);
      // What the warning says: accepted while the look-up is cached (if the CLI was quick enough to tell), refused after.
      const soon = await useKey(id, key);
      if (Date.now() - cachedAt < 1500) expect(soon).toEqual([200, undefined]);
      let answer = soon;
      while (answer[0] === 200 && Date.now() - cachedAt < 4000) {
        await new Promise((r) => setTimeout(r, 100));
        answer = await useKey(id, key);
      }
      expect(answer).toEqual([401, 'RMP_AUTH_TOKEN_REVOKED']);
      expect(Date.now() - cachedAt).toBeLessThan(4000);
    } finally {
      await id.close();
      await upstream.close();
    }
  });
});
