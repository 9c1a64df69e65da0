import { createHmac, timingSafeEqual } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parse, stringify } from 'yaml';
import { afterEach, describe, expect, it } from 'vitest';
import { closeAfterEach } from './helpers/gateway.js';
import { send } from './helpers/http.js';
import type { AlertRecord } from '../src/observability/alerts.js';

/**
 * Alert rules through a real gateway, notifying a real webhook receiver on 127.0.0.1:0 that
 * checks every signature with the shared secret the way docs/alerts.md tells receivers to.
 */

const SECRET = 'whsec-test-0123456789abcdef0123456789abcdef';
const use = closeAfterEach(afterEach);

interface Delivery {
  at: number;
  headers: IncomingHttpHeaders;
  raw: string;
  body: { alert: Omit<AlertRecord, 'notifications'> & Record<string, unknown>; gateway: Record<string, unknown> };
  signatureValid: boolean;
}

/** Checks `t=<seconds>,v1=<hex>` independently of the gateway's code. */
function verify(header: string | undefined, raw: string): boolean {
  const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header ?? '');
  if (m === null) return false;
  if (Math.abs(Date.now() / 1000 - Number(m[1])) > 300) return false;
  const expected = createHmac('sha256', SECRET).update(`${m[1]}.${raw}`).digest();
  return timingSafeEqual(expected, Buffer.from(m[2]!, 'hex'));
}

/** A webhook receiver; `answer(n, res)` answers the n-th request (1-based; default 200). */
async function startReceiver(answer: (n: number, res: ServerResponse) => void = (_n, res) => res.end('ok')) {
  const deliveries: Delivery[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      deliveries.push({ at: performance.now(), headers: req.headers, raw, body: JSON.parse(raw) as Delivery['body'], signatureValid: verify(req.headers['x-rampart-signature'] as string | undefined, raw) });
      answer(deliveries.length, res);
      for (const w of [...waiters]) {
        if (deliveries.length < w.n) continue;
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const receiver = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/rampart`,
    deliveries,
    /** Resolves once `n` requests have arrived. */
    received(n: number, timeoutMs = 10_000): Promise<void> {
      if (deliveries.length >= n) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out waiting for ${n} deliveries (got ${deliveries.length})`)), timeoutMs);
        waiters.push({ n, resolve: () => (clearTimeout(timer), resolve()) });
      });
    },
    close: () => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))),
  };
  return receiver;
}

const webhook = (url: string, extra: Record<string, unknown> = {}) => ({ ops: { url, secret: SECRET, backoff: '20ms', ...extra } });

const loginFail = (clientIp: string) => ({ type: 'authn_login_fail', level: 'WARN' as const, description: 'login failed: wrong password', clientIp, data: { reason: 'password' } });

describe('alerts', () => {
  const receivers: { close(): Promise<void> }[] = [];
  afterEach(async () => {
    for (const r of receivers.splice(0)) await r.close();
  });
  const receiver = async (answer?: Parameters<typeof startReceiver>[0]) => {
    const r = await startReceiver(answer);
    receivers.push(r);
    return r;
  };

  it('an alert rule fires exactly once per de-duplication window, signed, and again after it', async () => {
    const hook = await receiver();
    const gw = await use.gateway({
      log: { level: 'debug' },
      alerts: {
        defaults: false,
        webhooks: webhook(hook.url),
        rules: [{ name: 'login-failures-by-ip', kind: 'event', event: 'authn_login_fail', groupBy: 'clientIp', threshold: 5, window: '1m', severity: 'WARN', notify: ['log', 'ops'], dedup: '600ms' }],
      },
    });
    const alerts = gw.runtime.alerts;
    for (let i = 0; i < 5; i++) gw.runtime.events.emit(loginFail('203.0.113.9'));
    await alerts.settled();
    expect(alerts.history()).toEqual([]);
    // Thirty more from the same address, and some from another one below the threshold.
    for (let i = 0; i < 30; i++) gw.runtime.events.emit(loginFail('203.0.113.9'));
    for (let i = 0; i < 3; i++) gw.runtime.events.emit(loginFail('198.51.100.7'));
    await hook.received(1);
    await alerts.settled();
    expect(hook.deliveries).toHaveLength(1);
    const first = hook.deliveries[0]!;
    expect(first.signatureValid).toBe(true);
    expect(first.headers['content-type']).toBe('application/json');
    expect(first.headers['user-agent']).toMatch(/^rampart\/\d+\.\d+\.\d+/);
    expect(first.headers['x-rampart-attempt']).toBe('1');
    expect(first.headers['x-rampart-delivery']).toMatch(/^[0-9a-f-]{36}$/);
    expect(first.body.alert).toMatchObject({ rule: 'login-failures-by-ip', kind: 'event', severity: 'WARN', group: '203.0.113.9', value: 6, threshold: 5, window: '1m', summary: 'authn_login_fail from 203.0.113.9: 6 in 1m (over 5)' });
    expect(first.body.alert).not.toHaveProperty('notifications');
    expect(first.body.gateway).toMatchObject({ name: 'rampart', version: expect.any(String), hostname: expect.any(String) });

    // The sys_alert event, in the log (the `log` target) with the group in its own field.
    const line = await gw.logs.waitFor((l) => l.event === 'sys_alert:login-failures-by-ip');
    expect(line).toMatchObject({ type: 'event', eventLevel: 'WARN', clientIp: '203.0.113.9', level: 'warn' });
    expect(gw.logs.lines.filter((l) => typeof l.event === 'string' && l.event.startsWith('sys_alert'))).toHaveLength(1);

    const [record] = alerts.history();
    expect(record).toMatchObject({ rule: 'login-failures-by-ip', group: '203.0.113.9', notifications: [{ target: 'log', status: 'sent', attempts: 1 }, { target: 'ops', status: 'sent', attempts: 1 }] });
    expect(alerts.rules()).toEqual([{ name: 'login-failures-by-ip', kind: 'event', description: 'more than 5 authn_login_fail events per clientIp in 1m', severity: 'WARN', firing: true, lastFiredAt: record!.firedAt }]);

    // Still inside the window: another burst is quiet.
    const firedAt = Date.parse(record!.firedAt);
    for (let i = 0; i < 30; i++) gw.runtime.events.emit(loginFail('203.0.113.9'));
    await alerts.settled();
    if (Date.now() - firedAt < 600) expect(hook.deliveries).toHaveLength(1);

    // Past the window: the next burst fires once more, as a new delivery.
    await until(() => Date.now() - firedAt > 650);
    for (let i = 0; i < 30; i++) gw.runtime.events.emit(loginFail('203.0.113.9'));
    await hook.received(2);
    await alerts.settled();
    expect(hook.deliveries).toHaveLength(2);
    expect(hook.deliveries[1]!.signatureValid).toBe(true);
    expect(hook.deliveries[1]!.headers['x-rampart-delivery']).not.toBe(first.headers['x-rampart-delivery']);
    expect(alerts.history().map((r) => r.rule)).toEqual(['login-failures-by-ip', 'login-failures-by-ip']);

    const text = await gw.runtime.metrics.registry.metrics();
    expect(text).toContain('rampart_alerts_fired_total{rule="login-failures-by-ip",severity="WARN"} 2');
    expect(text).toContain('rampart_alert_notifications_total{target="ops",result="sent"} 2');
    expect(text).toContain('rampart_alert_notifications_total{target="log",result="sent"} 2');
    // Debug logging included, the secret is nowhere in the log.
    expect(JSON.stringify(gw.logs.lines)).not.toContain(SECRET);
    expect(gw.logs.lines.some((l) => l.msg === 'alert webhook delivered')).toBe(true);
  });

  it('retries when the receiver returns 500: same delivery id, increasing attempt numbers, delivered once', async () => {
    const hook = await receiver((n, res) => {
      res.statusCode = n <= 3 ? 500 : 200;
      res.end();
    });
    const gw = await use.gateway({
      log: { level: 'debug' },
      alerts: { defaults: false, webhooks: webhook(hook.url), rules: [{ name: 'any-token-reuse', event: 'authn_token_reuse', groupBy: 'subject', threshold: 0, severity: 'CRITICAL', notify: ['ops'] }] },
    });
    gw.runtime.events.emit({ type: 'authn_token_reuse', level: 'CRITICAL', description: 'a spent refresh token was used again', subject: 'u_1' });
    await hook.received(4);
    await gw.runtime.alerts.settled();
    expect(hook.deliveries).toHaveLength(4);
    expect(hook.deliveries.every((d) => d.signatureValid)).toBe(true);
    expect(new Set(hook.deliveries.map((d) => d.headers['x-rampart-delivery'])).size).toBe(1);
    expect(hook.deliveries.map((d) => d.headers['x-rampart-attempt'])).toEqual(['1', '2', '3', '4']);
    expect(new Set(hook.deliveries.map((d) => d.raw)).size).toBe(1);
    // Backoff 20 ms doubling, with jitter between half and all: gaps of at least 10, 20 and 40 ms.
    const gaps = hook.deliveries.slice(1).map((d, i) => d.at - hook.deliveries[i]!.at);
    expect(gaps[0]).toBeGreaterThanOrEqual(9);
    expect(gaps[1]).toBeGreaterThanOrEqual(19);
    expect(gaps[2]).toBeGreaterThanOrEqual(39);
    for (const gap of gaps) expect(gap).toBeLessThan(5000);
    expect(gw.runtime.alerts.history()[0]!.notifications).toEqual([{ target: 'ops', status: 'sent', attempts: 4 }]);
    expect(gw.runtime.alerts.history()[0]).toMatchObject({ group: 'u_1', summary: 'authn_token_reuse about u_1: 1 in 1m (over 0)' });
    expect(JSON.stringify(gw.logs.lines)).not.toContain(SECRET);
  });

  it('does not retry on 400, and a 429 Retry-After is bounded by maxBackoff', async () => {
    const refused = await receiver((_n, res) => {
      res.statusCode = 400;
      res.end('bad');
    });
    const busy = await receiver((n, res) => {
      if (n === 1) res.writeHead(429, { 'retry-after': '120' });
      res.end();
    });
    const gw = await use.gateway({
      alerts: {
        defaults: false,
        webhooks: { ...webhook(refused.url), busy: { url: busy.url, secret: SECRET, backoff: '20ms', maxBackoff: '100ms' } },
        rules: [{ name: 'pings', event: 'sys_ping', threshold: 0, notify: ['log', 'ops', 'busy'] }],
      },
    });
    gw.runtime.events.emit({ type: 'sys_ping', level: 'INFO', description: 'ping' });
    await refused.received(1);
    await busy.received(2);
    await gw.runtime.alerts.settled();
    expect(refused.deliveries).toHaveLength(1);
    expect(busy.deliveries).toHaveLength(2);
    // 120 s asked for, 100 ms allowed.
    expect(busy.deliveries[1]!.at - busy.deliveries[0]!.at).toBeLessThan(5000);
    expect(gw.runtime.alerts.history()[0]!.notifications).toEqual([
      { target: 'log', status: 'sent', attempts: 1 },
      { target: 'ops', status: 'failed', attempts: 1, error: 'HTTP 400' },
      { target: 'busy', status: 'sent', attempts: 2 },
    ]);
    expect(await gw.runtime.metrics.registry.metrics()).toContain('rampart_alert_notifications_total{target="ops",result="failed"} 1');
    const failed = await gw.logs.waitFor((l) => l.msg === 'alert webhook delivery failed');
    expect(failed).toMatchObject({ target: 'ops', attempts: 1, error: 'HTTP 400' });
    expect(JSON.stringify(failed)).not.toContain('hooks/rampart');
  });

  it('a ratio rule fires from real traffic to an upstream answering 500 (and so does the built-in one)', async () => {
    const hook = await receiver();
    const up = await use.upstream((req, res) => {
      res.writeHead(req.url === '/boom' ? 500 : 200, { 'content-type': 'application/json' });
      res.end('{"ok":false}');
    });
    const gw = await use.gateway({
      upstreams: { api: { targets: [{ url: up.url }] } },
      routes: [{ name: 'api', match: { path: '/api/*' }, upstream: 'api', stripPrefix: '/api' }],
      alerts: {
        webhooks: webhook(hook.url),
        rules: [{ name: 'upstream-errors', kind: 'ratio', ratio: 'upstream5xx', threshold: 0.1, minRequests: 10, window: '30s', severity: 'CRITICAL', notify: ['log', 'ops'] }],
      },
    });
    for (let i = 0; i < 10; i++) expect((await send(gw.url, '/api/ok')).status).toBe(200);
    for (let i = 0; i < 15; i++) expect((await send(gw.url, '/api/boom')).status).toBeGreaterThanOrEqual(500);
    await hook.received(1);
    await gw.runtime.alerts.settled();
    const alert = hook.deliveries[0]!.body.alert;
    expect(hook.deliveries[0]!.signatureValid).toBe(true);
    expect(alert).toMatchObject({ rule: 'upstream-errors', kind: 'ratio', severity: 'CRITICAL', group: null, threshold: 0.1, window: '30s' });
    expect(alert.value).toBeGreaterThan(0.1);
    expect(alert.summary).toMatch(/^upstream 5xx ratio [\d.]+% \(\d+ of \d+ forwarded requests\) in 30s \(over 10%\)$/);
    // The built-in rule (over 5 % with at least 20 forwarded requests in 5m) fires on the same traffic.
    const builtin = await gw.logs.waitFor((l) => l.event === 'sys_alert:upstream-5xx-ratio');
    expect(builtin).toMatchObject({ eventLevel: 'WARN' });
    const rules = gw.runtime.alerts.rules();
    expect(rules.map((r) => r.name)).toEqual(['credential-stuffing', 'token-reuse', 'upstream-5xx-ratio', 'denial-spike', 'upstream-errors']);
    expect(rules.find((r) => r.name === 'upstream-errors')).toMatchObject({ firing: true, lastFiredAt: expect.any(String) });
    expect(rules.find((r) => r.name === 'denial-spike')).toMatchObject({ firing: false, lastFiredAt: null });
    // Both fired once only, though the ratio stays over the threshold every second.
    await gw.runtime.alerts.settled();
    expect(gw.runtime.alerts.history().map((r) => r.rule).sort()).toEqual(['upstream-5xx-ratio', 'upstream-errors']);
  });

  it('a reload keeps the de-duplication state of unchanged rules and applies new ones', async () => {
    const gw = await use.gateway({ alerts: { defaults: false, rules: [{ name: 'logins', event: 'authn_login_fail', groupBy: 'clientIp', threshold: 0, dedup: '1h' }] } });
    gw.runtime.events.emit(loginFail('203.0.113.9'));
    expect(gw.runtime.alerts.history()).toHaveLength(1);
    const config = parse(readFileSync(gw.configFile, 'utf8')) as { alerts: { rules: Record<string, unknown>[] } };
    config.alerts.rules.push({ name: 'reuse', event: 'authn_token_reuse', threshold: 0 });
    writeFileSync(gw.configFile, stringify(config));
    expect(await gw.runtime.reload()).toMatchObject({ ok: true });
    gw.runtime.events.emit(loginFail('203.0.113.9'));
    gw.runtime.events.emit({ type: 'authn_token_reuse', level: 'CRITICAL', description: 'reuse', subject: 'u_1' });
    expect(gw.runtime.alerts.history().map((r) => r.rule)).toEqual(['reuse', 'logins']);
    expect(gw.runtime.alerts.rules().map((r) => r.name)).toEqual(['logins', 'reuse']);
  });

  it('shutdown cancels pending retries and awaits the webhooks', async () => {
    const hook = await receiver((_n, res) => {
      res.statusCode = 503;
      res.end();
    });
    const gw = await use.gateway({ log: { level: 'debug' }, alerts: { defaults: false, webhooks: webhook(hook.url, { backoff: '30s', maxBackoff: '60s' }), rules: [{ name: 'pings', event: 'sys_ping', threshold: 0, notify: ['ops'] }] } });
    gw.runtime.events.emit({ type: 'sys_ping', level: 'INFO', description: 'ping' });
    await hook.received(1);
    await gw.logs.waitFor((l) => l.msg === 'alert webhook attempt failed; retrying');
    const started = performance.now();
    await gw.close();
    expect(performance.now() - started).toBeLessThan(10_000);
    expect(gw.runtime.alerts.history()[0]!.notifications).toEqual([{ target: 'ops', status: 'failed', attempts: 1, error: 'shutdown' }]);
    expect(hook.deliveries).toHaveLength(1);
  });
});

/** Resolves when `condition` holds (checked every few ms), failing after `timeoutMs`. */
async function until(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}
