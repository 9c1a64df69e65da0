import { afterEach, describe, expect, it } from 'vitest';
import { postgresAvailable, startIdentityGateway, type IdentityGateway } from './helpers/identity.js';
import { redisAvailable } from './helpers/services.js';

/**
 * Two gateways sharing PostgreSQL and Redis behave as one identity service: a session started on
 * one refreshes on the other, a logout on one is refused by the other (revocations in Redis,
 * invalidated over pub/sub), and a refresh-token reuse detected on one ends the session everywhere.
 */
const ready = (await postgresAvailable()) && (await redisAvailable());
const open: IdentityGateway[] = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

describe.skipIf(!ready)('identity across two nodes (PostgreSQL + Redis)', () => {
  it('refreshes on either node, and a logout or a reuse on one is refused on the other', async () => {
    const redis = { url: 'redis://127.0.0.1:6379', keyPrefix: `rampart-test:${process.pid}:${Date.now()}:` };
    const a = await startIdentityGateway({ backend: 'postgres', redis });
    open.push(a);
    const b = await startIdentityGateway({ backend: 'postgres', redis, storageUrl: a.storageUrl });
    open.push(b);
    const credentials = { email: 'roaming@example.com', password: 'a long enough passphrase 7' };
    expect((await a.call('POST', '/api/v1/auth/register', { json: credentials })).status).toBe(202);
    const login = (await a.call('POST', '/api/v1/auth/login', { json: credentials })).json<{ access_token: string; refresh_token: string }>();
    // Same keys (one database): B accepts A's token and rotates A's refresh token.
    expect((await b.call('GET', '/api/v1/users/me', { token: login.access_token })).status).toBe(200);
    const onB = await b.call('POST', '/api/v1/auth/refresh', { json: { refresh_token: login.refresh_token } });
    expect(onB.status).toBe(200);
    const rotated = onB.json<{ access_token: string; refresh_token: string }>();

    // Logout on A: B refuses the token at once (pub/sub invalidation; bounded wait on the event).
    expect((await b.call('GET', '/api/v1/users/me', { token: rotated.access_token })).status).toBe(200);
    expect((await a.call('POST', '/api/v1/auth/logout', { token: rotated.access_token })).status).toBe(204);
    let refused = await b.call('GET', '/api/v1/users/me', { token: rotated.access_token });
    for (let i = 0; i < 40 && refused.status === 200; i++) refused = await b.call('GET', '/api/v1/users/me', { token: rotated.access_token });
    expect([refused.status, refused.json().code]).toEqual([401, 'RMP_AUTH_TOKEN_REVOKED']);

    // Reuse of a spent refresh token on B ends the session that lives on A.
    const second = (await a.call('POST', '/api/v1/auth/login', { json: credentials })).json<{ access_token: string; refresh_token: string }>();
    const next = (await a.call('POST', '/api/v1/auth/refresh', { json: { refresh_token: second.refresh_token } })).json<{ access_token: string }>();
    expect((await b.call('POST', '/api/v1/auth/refresh', { json: { refresh_token: second.refresh_token } })).status).toBe(401);
    let dead = await a.call('GET', '/api/v1/users/me', { token: next.access_token });
    for (let i = 0; i < 40 && dead.status === 200; i++) dead = await a.call('GET', '/api/v1/users/me', { token: next.access_token });
    expect([dead.status, dead.json().code]).toEqual([401, 'RMP_AUTH_TOKEN_REVOKED']);
  });
});
