import { afterEach, describe, expect, it } from 'vitest';
import { PG_URL, freshStorage, holdNextCall, postgresAvailable, startNotesBehindIdentity, type Reply } from './helpers/identity.js';
import { startTcpProxy } from './helpers/tcp-proxy.js';

/**
 * PostgreSQL goes away (a TCP proxy the test owns is cut, never the shared server), also in the
 * middle of a transaction (regression: a dropped connection crashed the process): the identity
 * endpoints answer 503 RMP_STORE_UNAVAILABLE with Retry-After and change nothing, proxying with
 * tokens already issued goes on, the process does not crash, and everything works again once the
 * database is back.
 */
const pgUp = await postgresAvailable();
const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

describe.skipIf(!pgUp)('identity store outage (PostgreSQL behind a proxy the test cuts)', () => {
  it('answers 503 RMP_STORE_UNAVAILABLE while the database is away, keeps proxying, and recovers', async () => {
    const storage = await freshStorage('postgres');
    open.push({ close: storage.drop });
    const proxy = await startTcpProxy(5432);
    open.push(proxy);
    const url = storage.url.replace(new URL(PG_URL).host, `127.0.0.1:${proxy.port}`);
    const notes = await startNotesBehindIdentity({ backend: 'postgres', storageUrl: url });
    open.push(notes);
    const id = notes.id;
    const gw = id.gw;
    const call = (method: string, path: string, json?: unknown, token?: string): Promise<Reply> => id.call(method, path, { json, ...(token !== undefined ? { token } : {}) });
    const credentials = { email: 'steady@example.com', password: 'a long enough passphrase 7' };
    expect((await call('POST', '/api/v1/auth/register', credentials)).status).toBe(202);
    const login = await call('POST', '/api/v1/auth/login', credentials);
    expect(login.status).toBe(200);
    const { access_token: token, refresh_token: refresh } = login.json<{ access_token: string; refresh_token: string }>();

    // The connection drops in the middle of a transaction (the refresh's, held while it signs):
    // the process must not crash, the refresh answers 503 and spends nothing.
    const { inside, release } = holdNextCall(gw.runtime.identity!.service.tokens, 'issue');
    const midway = call('POST', '/api/v1/auth/refresh', { refresh_token: refresh });
    await inside;
    proxy.cut();
    release();
    const cutMidway = await midway;
    expect([cutMidway.status, cutMidway.json().code]).toEqual([503, 'RMP_STORE_UNAVAILABLE']);
    for (const reply of [await call('POST', '/api/v1/auth/login', credentials), await call('POST', '/api/v1/auth/refresh', { refresh_token: refresh }), await call('GET', '/api/v1/users/me', undefined, token)]) {
      expect(reply.status).toBe(503);
      expect(reply.json().code).toBe('RMP_STORE_UNAVAILABLE');
      expect(reply.headers['retry-after']).toBe('5');
    }
    // Routes that do not need the database keep working with the tokens already issued.
    expect((await call('GET', '/api/notes/1', undefined, token)).status).toBe(200);
    // Security events of the outage (refused tokens) are held for the audit table, not lost.
    const audit = gw.runtime.identity!.audit;
    const writtenBefore = audit.written;
    const outageIds: string[] = [];
    for (let i = 0; i < 3; i++) {
      const refused = await call('GET', '/api/notes/1', undefined, `not-a-token-${i}`);
      expect(refused.status).toBe(401);
      outageIds.push(String(refused.headers['x-request-id']));
    }
    const held = await gw.runtime.metrics.registry.metrics();
    expect(Number(/^rampart_audit_pending (\d+)$/m.exec(held)![1])).toBeGreaterThanOrEqual(outageIds.length);

    proxy.restore();
    // The refresh token was not spent while the database was away.
    const refreshed = await call('POST', '/api/v1/auth/refresh', { refresh_token: refresh });
    expect(refreshed.status).toBe(200);
    expect((await call('POST', '/api/v1/auth/login', credentials)).status).toBe(200);
    // Nothing was lost: the outage's events are in the audit table, none dropped, none pending.
    const { items } = await audit.list({}, 500);
    for (const requestId of outageIds) expect(items.some((e) => e.requestId === requestId), requestId).toBe(true);
    expect(audit.written - writtenBefore).toBeGreaterThanOrEqual(outageIds.length);
    const after = await gw.runtime.metrics.registry.metrics();
    expect(after).toMatch(/^rampart_audit_pending 0$/m);
    expect(after).toMatch(/^rampart_audit_events_total\{result="dropped"\} 0$/m);
  });
});
