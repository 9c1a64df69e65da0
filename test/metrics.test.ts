import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, startUpstream, type TestGateway, type TestUpstream } from './helpers/gateway.js';
import { send } from './helpers/http.js';

/**
 * `/metrics` on the admin listener: the Prometheus text format (checked with a parser of it),
 * the families a dashboard needs, and labels that stay bounded whatever clients send.
 */

let up: TestUpstream;
let gw: TestGateway;

beforeAll(async () => {
  up = await startUpstream((req, res) => {
    const status = req.url === '/boom' ? 500 : 200;
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end('{"ok":true}');
  });
  gw = await startGateway({
    admin: { enabled: true, listen: { host: '127.0.0.1', port: 0 } },
    // The built-in denial-spike alert would fire on the random-path flood below (a new series).
    alerts: { defaults: false },
    upstreams: { api: { targets: [{ url: up.url }] } },
    routes: [
      { name: 'api', match: { path: '/api/*' }, upstream: 'api', stripPrefix: '/api', policies: { 'rate-limit': { limits: [{ name: 'tight', key: ['ip'], limit: 3, window: '1m' }] } } },
    ],
  });
});

afterAll(async () => {
  await gw?.close();
  await up?.close();
});

async function scrape() {
  const res = await send(gw.runtime.adminUrl!, '/metrics');
  expect(res.status).toBe(200);
  expect(res.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
  return { text: res.text, families: new Map(parsePrometheusTextFormat(res.text).map((f) => [f.name, f])) };
}

describe('metrics', () => {
  it('exposes the request, latency, denial, upstream, event and process families in the text format', async () => {
    await send(gw.url, '/api/ok');
    await send(gw.url, '/api/boom');
    for (let i = 0; i < 3; i++) await send(gw.url, '/api/ok');
    const { families } = await scrape();
    for (const name of ['rampart_requests_total', 'rampart_request_duration_seconds', 'rampart_upstream_duration_seconds', 'rampart_denials_total', 'rampart_upstream_errors_total', 'rampart_security_events_total', 'process_cpu_user_seconds_total', 'nodejs_eventloop_lag_seconds']) {
      expect(families.has(name), name).toBe(true);
    }
    const requests = families.get('rampart_requests_total')!.metrics;
    expect(requests.find((m) => m.labels?.route === 'api' && m.labels.method === 'GET' && m.labels.status_class === '2xx')?.value).toBe('2');
    expect(families.get('rampart_denials_total')!.metrics).toContainEqual({ labels: { route: 'api', policy: 'rate-limit', code: 'RMP_RATE_LIMITED', area: 'RATE' }, value: '2' });
    expect(families.get('rampart_denials_total')!.metrics).toContainEqual({ labels: { route: 'api', policy: 'upstream', code: 'RMP_UPSTREAM_ERROR', area: 'UPSTREAM' }, value: '1' });
    expect(families.get('rampart_upstream_errors_total')!.metrics).toContainEqual({ labels: { route: 'api', upstream: 'api', kind: 'server_error' }, value: '1' });
    expect(families.get('rampart_upstream_duration_seconds')!.type).toBe('HISTOGRAM');
    expect(families.get('rampart_security_events_total')!.metrics.some((m) => m.labels?.type === 'sys_startup')).toBe(true);
  });

  it('label cardinality does not grow with random paths, methods or hostile values', async () => {
    const seriesCount = (text: string) => text.split('\n').filter((l) => l.startsWith('rampart_')).length;
    await send(gw.url, '/nope-warmup');
    await send(gw.url, '/nope-warmup', { method: 'PROPFIND' });
    const before = seriesCount((await scrape()).text);
    for (let i = 0; i < 200; i++) {
      await send(gw.url, `/random-${Math.random().toString(36).slice(2)}/${i}?q=${i}`, { method: i % 2 === 0 ? 'GET' : 'PROPFIND', headers: { 'x-evil': `"} route="${i}` } });
    }
    const { text, families } = await scrape();
    expect(seriesCount(text)).toBe(before);
    const routes = new Set(families.get('rampart_requests_total')!.metrics.map((m) => m.labels?.route));
    expect([...routes].sort()).toEqual(['*', 'api']);
    expect(text).not.toContain('random-');
  });

  it('is not served on the gateway listener', async () => {
    const res = await send(gw.url, '/metrics');
    expect(res.status).toBe(404);
    expect(res.text).not.toContain('rampart_requests_total');
  });
});
