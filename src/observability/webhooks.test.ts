import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from './logger.js';
import { parseRetryAfter, signature, verifySignature, Webhooks, type DeliveryResult, type WebhookTarget } from './webhooks.js';

const SECRET = 's'.repeat(32);
const logger = createLogger({ level: 'silent', destination: 'stdout' }, new Writable({ write: (_c, _e, cb) => cb() }));
const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

describe('webhook signatures', () => {
  it('verify with the secret, over the raw body, within the tolerance only', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    const t = now / 1000;
    const header = signature(SECRET, t, '{"a":1}');
    expect(header).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    expect(verifySignature(SECRET, header, '{"a":1}', 300, now)).toBe(true);
    expect(verifySignature(SECRET, header, '{"a": 1}', 300, now)).toBe(false);
    expect(verifySignature('t'.repeat(32), header, '{"a":1}', 300, now)).toBe(false);
    expect(verifySignature(SECRET, header, '{"a":1}', 300, now + 301_000)).toBe(false);
    for (const bad of [undefined, '', 't=1', 'v1=00', `t=x,v1=${'0'.repeat(64)}`, header.replace(/v1=../, 'v1=zz'), `${header}0`]) {
      expect(verifySignature(SECRET, bad, '{"a":1}', 300, now), String(bad)).toBe(false);
    }
  });

  it('reads Retry-After as seconds or a date', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(parseRetryAfter('7', now)).toBe(7000);
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('Wed, 31 Dec 2025 00:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });
});

describe('webhook delivery', () => {
  it('holds a bounded number of deliveries: past it they are dropped and counted', async () => {
    const held: ServerResponse[] = [];
    const server = createServer((req, res) => {
      req.resume();
      held.push(res);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanup.push(() => new Promise((r) => (server.closeAllConnections(), server.close(() => r()))));
    const target: WebhookTarget = { name: 'x', url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, secret: SECRET, timeoutMs: 10_000, retries: 0, backoffMs: 10, maxBackoffMs: 10 };
    const webhooks = new Webhooks({ logger, userAgent: 'rampart/test', concurrency: 1, maxPending: 2 });
    cleanup.push(() => webhooks.close());
    const results: DeliveryResult[] = [];
    for (let i = 0; i < 4; i++) webhooks.send(target, '{}', (r) => results.push(r));
    expect(results).toEqual([{ status: 'dropped', attempts: 0, error: 'queue full' }, { status: 'dropped', attempts: 0, error: 'queue full' }]);
    expect(webhooks.dropped).toBe(2);
    // One at a time: the second waits for the first.
    while (held.length < 1) await new Promise((r) => setTimeout(r, 5));
    expect(held).toHaveLength(1);
    held[0]!.end();
    while (held.length < 2) await new Promise((r) => setTimeout(r, 5));
    held[1]!.end();
    await webhooks.settled();
    expect(results.slice(2)).toEqual([{ status: 'sent', attempts: 1 }, { status: 'sent', attempts: 1 }]);
  });

  it('does not follow redirects', async () => {
    let hits = 0;
    const server = createServer((req, res) => {
      req.resume();
      hits++;
      res.writeHead(307, { location: '/elsewhere' }).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanup.push(() => new Promise((r) => (server.closeAllConnections(), server.close(() => r()))));
    const webhooks = new Webhooks({ logger, userAgent: 'rampart/test' });
    cleanup.push(() => webhooks.close());
    const result = await new Promise<DeliveryResult>((resolve) =>
      webhooks.send({ name: 'x', url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, secret: SECRET, timeoutMs: 5000, retries: 3, backoffMs: 10, maxBackoffMs: 10 }, '{}', resolve),
    );
    expect(result).toEqual({ status: 'failed', attempts: 1, error: 'HTTP 307' });
    expect(hits).toBe(1);
  });

  it('retries a connection refused, then gives up', async () => {
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    await new Promise((r) => server.close(r));
    const webhooks = new Webhooks({ logger, userAgent: 'rampart/test' });
    cleanup.push(() => webhooks.close());
    const result = await new Promise<DeliveryResult>((resolve) => webhooks.send({ name: 'x', url: `http://127.0.0.1:${port}/`, secret: SECRET, timeoutMs: 5000, retries: 2, backoffMs: 5, maxBackoffMs: 10 }, '{}', resolve));
    expect(result).toEqual({ status: 'failed', attempts: 3, error: 'ECONNREFUSED' });
  });
});
