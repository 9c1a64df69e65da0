import { afterEach, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { Stores, type RedisSettings } from '../stores/stores.js';
import { createLogger } from '../observability/logger.js';
import { MemoryRevocation } from './revocation.js';
import { redisAvailable } from '../../test/helpers/services.js';

const logger = createLogger({ level: 'silent', destination: 'stderr' });
const redisUp = await redisAvailable();
const open: Stores[] = [];
afterEach(async () => {
  for (const s of open.splice(0)) await s.close();
});

const now = () => Math.floor(Date.now() / 1000);

describe('revocation', () => {
  it('memory: a jti until its expiry, a subject before a time', async () => {
    const r = new MemoryRevocation();
    await r.revokeToken('t1', now() + 60);
    expect(r.isRevoked({ jti: 't1', sub: 'u', iat: now() })).toBe(true);
    expect(r.isRevoked({ jti: 't2', sub: 'u', iat: now() })).toBe(false);
    await r.revokeSubject('u', now() + 1);
    expect(r.isRevoked({ jti: 't2', sub: 'u', iat: now() })).toBe(true);
    expect(r.isRevoked({ jti: 't3', sub: 'u', iat: now() + 5 })).toBe(false);
    // Not-before only moves forward.
    await r.revokeSubject('u', 1);
    expect(r.isRevoked({ jti: 't2', sub: 'u', iat: now() })).toBe(true);
    r.close();
  });

  it.skipIf(!redisUp)('redis: a revocation made by one process is seen by another that had cached the opposite answer', async () => {
    const settings: RedisSettings = { url: 'redis://127.0.0.1:6379', keyPrefix: `rampart-test:${randomUUID()}:`, connectTimeoutMs: 2000, commandTimeoutMs: 1000 };
    const a = new Stores(logger);
    const b = new Stores(logger);
    open.push(a, b);
    const ra = a.revocation(settings);
    const rb = b.revocation(settings);
    await Promise.all([a.ready(2000), b.ready(2000)]);
    const token = { jti: randomUUID(), sub: `user-${randomUUID()}`, iat: now() };
    // Wait until B's subscription is up (its answers are cached only then), then cache "not revoked".
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline) {
      expect(await rb.isRevoked(token)).toBe(false);
      if (rb.isRevoked(token) === false) break; // answered from the local cache: subscribed
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(rb.isRevoked(token)).toBe(false);
    const started = Date.now();
    await ra.revokeToken(token.jti, now() + 60);
    // B drops its cached answer when the message arrives, then asks Redis.
    let seen = false;
    while (!seen && Date.now() - started < 2000) {
      seen = (await rb.isRevoked(token)) === true;
      if (!seen) await new Promise((r) => setTimeout(r, 10));
    }
    expect(seen).toBe(true);
    expect(Date.now() - started).toBeLessThan(1000); // measured: a few ms
    const other = { jti: randomUUID(), sub: token.sub, iat: now() - 10 };
    expect(await rb.isRevoked(other)).toBe(false);
    await ra.revokeSubject(token.sub, now());
    let subjectSeen = false;
    while (!subjectSeen && Date.now() - started < 3000) {
      subjectSeen = (await rb.isRevoked(other)) === true;
      if (!subjectSeen) await new Promise((r) => setTimeout(r, 10));
    }
    expect(subjectSeen).toBe(true);
  });
});
