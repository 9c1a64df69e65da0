// The observe phase's own cost, per request, in isolation: Prometheus metrics plus the live
// traffic figures (`Metrics.observe`), for an answered request and for a denied one. Part of
// `npm run bench` (docs/benchmarks.md); run alone with `node bench/observe.js` after `npm run build`.
import { performance } from 'node:perf_hooks';
import { Metrics } from '../dist/observability/metrics.js';

const N = Number(process.env.BENCH_OBSERVE_N ?? 2_000_000);

function fakeExchange(status, errorCode, ip) {
  const route = { name: 'notes', upstream: { name: 'notes' } };
  const ctx = {
    route,
    request: { method: 'GET' },
    startTime: performance.now(),
    upstreamTime: errorCode === undefined ? 1.2 : -1,
    upstreamStatus: errorCode === undefined ? status : 0,
    errorCode,
    deniedBy: errorCode === undefined ? undefined : 'rate-limit',
    limitedBy: errorCode === undefined ? undefined : 'per-ip',
    authPolicy: undefined,
    authenticated: true,
    clientIp: ip,
  };
  return { ctx, reply: { raw: { statusCode: status } } };
}

export function measureObserve(n = N) {
  const metrics = new Metrics({ processMetrics: false });
  const ok = fakeExchange(200, undefined, '10.0.0.1');
  const denied = fakeExchange(429, 'RMP_RATE_LIMITED', '10.0.0.2');
  const run = (x) => {
    for (let i = 0; i < n / 10; i++) metrics.observe(x.ctx, x.reply); // warm-up
    const t = performance.now();
    for (let i = 0; i < n; i++) metrics.observe(x.ctx, x.reply);
    return ((performance.now() - t) * 1000) / n;
  };
  return { answeredUs: run(ok), deniedUs: run(denied) };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = measureObserve();
  console.log(`observe phase (metrics + traffic figures): ${r.answeredUs.toFixed(2)} µs per answered request, ${r.deniedUs.toFixed(2)} µs per denied one (${N} calls each)`);
}
