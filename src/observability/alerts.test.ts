import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfigObject } from '../config/load.js';
import { Alerts } from './alerts.js';
import { createEvents, type Events } from './events.js';
import { createLogger } from './logger.js';
import { Metrics } from './metrics.js';

/** The engine with a frozen clock: windows, de-duplication, bounded groups and history. */

let clock = 0;
const open: Alerts[] = [];
afterEach(async () => {
  for (const a of open.splice(0)) await a.close();
});

function setup(alerts: Record<string, unknown>, now: () => number = () => clock): { alerts: Alerts; events: Events } {
  clock = Date.parse('2026-01-01T00:00:00Z');
  const logger = createLogger({ level: 'silent', destination: 'stdout' }, new Writable({ write: (_c, _e, cb) => cb() }));
  const events = createEvents(logger);
  const engine = new Alerts(loadConfigObject({ alerts }).config, { events, metrics: new Metrics({ processMetrics: false }), logger, now, tickMs: 3_600_000 });
  open.push(engine);
  return { alerts: engine, events };
}

const fail = (events: Events, clientIp: string) => events.emit({ type: 'authn_login_fail', level: 'WARN', description: 'login failed', clientIp });

describe('alert engine', () => {
  it('counts over a sliding window: old events leave it', () => {
    const { alerts, events } = setup({ defaults: false, rules: [{ name: 'r', event: 'authn_login_fail', groupBy: 'clientIp', threshold: 3, window: '1m' }] });
    const start = clock;
    for (const at of [0, 30_000, 40_000]) {
      clock = start + at;
      fail(events, '203.0.113.9');
    }
    // At 65 s the first has left the window: three in it, not over 3.
    clock = start + 65_000;
    fail(events, '203.0.113.9');
    expect(alerts.history()).toEqual([]);
    clock = start + 66_000;
    fail(events, '203.0.113.9');
    expect(alerts.history()).toMatchObject([{ rule: 'r', group: '203.0.113.9', value: 4, threshold: 3 }]);
  });

  it('fires once per rule and group within the de-duplication window, and again at its end', () => {
    const { alerts, events } = setup({ defaults: false, dedup: '10m', rules: [{ name: 'r', event: 'authn_', groupBy: 'clientIp', threshold: 0, window: '1h' }] });
    const start = clock;
    fail(events, '203.0.113.9');
    fail(events, '198.51.100.7');
    events.emit({ type: 'authn_token_reuse', level: 'CRITICAL', description: 'reuse', clientIp: '203.0.113.9' });
    expect(alerts.history().map((a) => a.group)).toEqual(['198.51.100.7', '203.0.113.9']);
    clock = start + 599_999;
    fail(events, '203.0.113.9');
    expect(alerts.history()).toHaveLength(2);
    clock = start + 600_000;
    fail(events, '203.0.113.9');
    expect(alerts.history().map((a) => a.group)).toEqual(['203.0.113.9', '198.51.100.7', '203.0.113.9']);
    expect(alerts.rules()[0]).toMatchObject({ name: 'r', firing: true, lastFiredAt: new Date(start + 600_000).toISOString() });
  });

  it('tracks at most 10 000 groups per rule, forgetting the least recently seen', () => {
    const { alerts, events } = setup({ defaults: false, rules: [{ name: 'r', event: 'authn_login_fail', groupBy: 'clientIp', threshold: 1, window: '1h' }] });
    fail(events, '203.0.113.9');
    for (let i = 0; i < 10_000; i++) fail(events, `10.0.${i >> 8}.${i & 255}`);
    // Its first event was forgotten with the group: one in the window again, not over 1.
    fail(events, '203.0.113.9');
    expect(alerts.history()).toEqual([]);
    fail(events, '203.0.113.9');
    expect(alerts.history()).toHaveLength(1);
  });

  it("never counts an alert's own sys_alert event, even for a rule over every sys_ event", async () => {
    // Every reading of the clock is a second later: de-duplication (1 ms) cannot hide a feedback loop.
    const { alerts, events } = setup({ defaults: false, rules: [{ name: 'system', event: 'sys_', threshold: 0, dedup: '1ms' }] }, () => (clock += 1000));
    const seen: string[] = [];
    // A loop would never yield (microtasks): it is cut after a few rounds so the test fails instead of hanging.
    events.addSink((e) => seen.push(e.event) > 10 && void alerts.close());
    events.emit({ type: 'sys_ping', level: 'INFO', description: 'ping' });
    await new Promise((r) => setImmediate(r));
    expect(seen).toEqual(['sys_ping', 'sys_alert:system']);
    expect(alerts.history()).toMatchObject([{ rule: 'system', summary: 'sys_*: 1 in 1m (over 0)' }]);
    events.emit({ type: 'sys_ping', level: 'INFO', description: 'ping' });
    await new Promise((r) => setImmediate(r));
    expect(seen).toEqual(['sys_ping', 'sys_alert:system', 'sys_ping', 'sys_alert:system']);
    expect(alerts.history().map((a) => a.value)).toEqual([2, 1]);
  });

  it('keeps the last 500 alerts, newest first', () => {
    const { alerts, events } = setup({ defaults: false, rules: [{ name: 'r', event: 'authn_login_fail', groupBy: 'clientIp', threshold: 0 }] });
    for (let i = 0; i < 600; i++) fail(events, `10.0.${i >> 8}.${i & 255}`);
    expect(alerts.history(1000)).toHaveLength(500);
    expect(alerts.history(2).map((a) => a.group)).toEqual(['10.0.2.87', '10.0.2.86']);
    expect(alerts.history()).toHaveLength(50);
    expect(alerts.history(0)).toEqual([]);
  });

  it('lists the built-in rules, a user rule of the same name replacing one', () => {
    const { alerts } = setup({ rules: [{ name: 'credential-stuffing', event: 'authn_login_fail', groupBy: 'clientIp', threshold: 5, window: '10s', severity: 'CRITICAL' }] });
    expect(alerts.rules()).toEqual([
      { name: 'credential-stuffing', kind: 'event', description: 'more than 5 authn_login_fail events per clientIp in 10s', severity: 'CRITICAL', firing: false, lastFiredAt: null },
      { name: 'token-reuse', kind: 'event', description: expect.stringContaining('refresh token was used again'), severity: 'CRITICAL', firing: false, lastFiredAt: null },
      { name: 'upstream-5xx-ratio', kind: 'ratio', description: expect.stringContaining('5 %'), severity: 'WARN', firing: false, lastFiredAt: null },
      { name: 'denial-spike', kind: 'ratio', description: expect.stringContaining('half'), severity: 'WARN', firing: false, lastFiredAt: null },
    ]);
  });
});
