import { describe, expect, it } from 'vitest';
import { Traffic, type Outcome } from './traffic.js';

const ok: Outcome = { status: 200, durationMs: 2, upstreamStatus: 200, errorCode: undefined, denied: false, policy: undefined, clientIp: '10.0.0.1' };

describe('traffic figures', () => {
  it('sums whole seconds, reads p50/p99 from the histogram and ranks denials and denied clients', () => {
    let now = 1_000_000_000;
    const t = new Traffic(() => now);
    for (let i = 0; i < 98; i++) t.record(ok);
    t.record({ ...ok, durationMs: 400 });
    t.record({ ...ok, status: 502, upstreamStatus: 503 });
    now += 1000;
    t.record({ ...ok, status: 429, upstreamStatus: -1, errorCode: 'RMP_RATE_LIMITED', denied: true, policy: 'rate-limit', clientIp: '10.0.0.9' });
    t.record({ ...ok, status: 429, upstreamStatus: -1, errorCode: 'RMP_RATE_LIMITED', denied: true, policy: 'rate-limit', clientIp: '10.0.0.9' });
    t.record({ ...ok, status: 401, upstreamStatus: -1, errorCode: 'RMP_AUTH_REQUIRED', denied: true, policy: 'jwt', clientIp: '10.0.0.8' });
    t.record({ ...ok, status: 504, upstreamStatus: 0, errorCode: 'RMP_UPSTREAM_TIMEOUT', denied: false });
    // The current second is left out until it is over.
    expect(t.summary(60).requests).toBe(100);
    now += 1000;
    const s = t.summary(60);
    expect(s.requests).toBe(104);
    expect(s.status).toEqual({ '1xx': 0, '2xx': 99, '3xx': 0, '4xx': 3, '5xx': 2 });
    expect(s.p50).toBeGreaterThanOrEqual(2);
    expect(s.p50).toBeLessThan(2.6);
    expect(s.p99).toBeGreaterThanOrEqual(2);
    expect(s.upstream).toBe(101);
    expect(s.upstream5xx).toBe(1);
    expect(s.upstreamErrors).toBe(1);
    expect(s.denials).toBe(3);
    expect(s.deniedBy).toEqual([{ code: 'RMP_RATE_LIMITED', count: 2 }, { code: 'RMP_AUTH_REQUIRED', count: 1 }]);
    expect(s.deniedByPolicy).toEqual([{ policy: 'rate-limit', count: 2 }, { policy: 'jwt', count: 1 }]);
    expect(s.topDeniedClients).toEqual([{ clientIp: '10.0.0.9', count: 2 }, { clientIp: '10.0.0.8', count: 1 }]);
    const series = t.series(3);
    expect(series.map((p) => p.requests)).toEqual([0, 100, 4]);
    expect(series[2]!.denials).toBe(3);
    expect(series[0]!.p50).toBeNull();
  });

  it('forgets seconds older than the window, and a reused slot starts empty', () => {
    let now = 5_000_000;
    const t = new Traffic(() => now);
    t.record(ok);
    now += 600_000; // the same slot of the ring, ten minutes later
    t.record(ok);
    now += 1000;
    expect(t.summary(599).requests).toBe(1);
    expect(t.summary(5).requests).toBe(1);
  });
});

describe('traffic figures under many denied addresses', () => {
  it('keeps at most 100 client addresses a second (the rest count as other), and totals match the summary', () => {
    let now = 9_000_000_000;
    const t = new Traffic(() => now);
    for (let i = 0; i < 500; i++) t.record({ ...ok, status: 401, upstreamStatus: -1, errorCode: 'RMP_AUTH_REQUIRED', denied: true, policy: 'jwt', clientIp: `10.1.${i >> 8}.${i & 255}` });
    now += 1000;
    const s = t.summary(10);
    expect(s.topDeniedClients[0]).toEqual({ clientIp: 'other', count: 400 });
    const totals = t.totals(10);
    expect(totals).toEqual({ until: s.until, seconds: s.seconds, requests: 500, status: s.status, upstream: 0, upstream5xx: 0, upstreamErrors: 0, denials: 500 });
  });
});
