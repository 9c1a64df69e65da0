/**
 * Live traffic figures of one gateway process, per second, for the console's overview, the
 * admin API's live stream and the alert rules over ratios. A ring of one-second buckets (the last
 * `SECONDS` seconds); each holds counts by status class, a latency histogram (log-spaced bins, so
 * p50/p99 are read to within a bin's width, ~12 %), upstream outcomes, and denials by code and
 * by client address. Recording a request allocates nothing unless it was denied.
 */

export const SECONDS = 600;
/** Distinct client addresses kept per second for "top denied clients"; past it they count as `other`. */
const MAX_CLIENTS_PER_SECOND = 100;
/** Latency bins: bin i holds durations up to BASE_MS × FACTOR^i. */
const BASE_MS = 0.05;
const FACTOR = 1.25;
const BINS = 64;
const LOG_FACTOR = Math.log(FACTOR);
export type StatusClass = '1xx' | '2xx' | '3xx' | '4xx' | '5xx';

class Bucket {
  second = -1;
  requests = 0;
  readonly status = new Uint32Array(5);
  readonly latency = new Uint32Array(BINS);
  upstream = 0;
  upstream5xx = 0;
  upstreamErrors = 0;
  denials = 0;
  byCode: Map<string, number> | undefined;
  byPolicy: Map<string, number> | undefined;
  byClient: Map<string, number> | undefined;

  reset(second: number): void {
    this.second = second;
    this.requests = 0;
    this.status.fill(0);
    this.latency.fill(0);
    this.upstream = 0;
    this.upstream5xx = 0;
    this.upstreamErrors = 0;
    this.denials = 0;
    this.byCode = undefined;
    this.byPolicy = undefined;
    this.byClient = undefined;
  }
}

/** One request's outcome, as the observe phase knows it. */
export interface Outcome {
  status: number;
  durationMs: number;
  /** The upstream's status; 0 when it did not answer; -1 when the request was not forwarded. */
  upstreamStatus: number;
  /** The code of the problem sent, when the gateway refused or failed the request. */
  errorCode: string | undefined;
  /** Whether that problem is a denial (the client's request refused), not a failure upstream. */
  denied: boolean;
  /** The policy that refused it (`gateway` when no policy did: no route, a malformed request). */
  policy: string | undefined;
  clientIp: string;
}

/** Figures over a window of seconds. */
export interface TrafficSummary {
  /** The last whole second included (epoch seconds). */
  until: number;
  seconds: number;
  requests: number;
  /** Requests per second over the window. */
  rate: number;
  status: Record<StatusClass, number>;
  /** Milliseconds; null when there were no requests. */
  p50: number | null;
  p99: number | null;
  upstream: number;
  upstream5xx: number;
  upstreamErrors: number;
  denials: number;
  /** Denials by error code, most first. */
  deniedBy: { code: string; count: number }[];
  /** Denials by the policy that refused them, most first. */
  deniedByPolicy: { policy: string; count: number }[];
  /** Client addresses denied most, most first (at most 10). */
  topDeniedClients: { clientIp: string; count: number }[];
}

/** Counts only (no latency, no breakdowns): what ratio alerts read every second, cheaply. */
export type TrafficTotals = Pick<TrafficSummary, 'until' | 'seconds' | 'requests' | 'status' | 'upstream' | 'upstream5xx' | 'upstreamErrors' | 'denials'>;

/** One second of the series the overview charts. */
export interface TrafficPoint {
  t: number;
  requests: number;
  status: Record<StatusClass, number>;
  p50: number | null;
  p99: number | null;
  denials: number;
  upstream5xx: number;
}

export class Traffic {
  readonly #buckets: Bucket[] = Array.from({ length: SECONDS }, () => new Bucket());
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  record(o: Outcome): void {
    const second = Math.floor(this.#now() / 1000);
    const b = this.#buckets[second % SECONDS]!;
    if (b.second !== second) b.reset(second);
    b.requests++;
    const cls = Math.floor(o.status / 100) - 1;
    if (cls >= 0 && cls < 5) b.status[cls]!++;
    b.latency[bin(o.durationMs)]!++;
    if (o.upstreamStatus >= 0) {
      b.upstream++;
      if (o.upstreamStatus >= 500) b.upstream5xx++;
      else if (o.upstreamStatus === 0) b.upstreamErrors++;
    }
    if (o.denied && o.errorCode !== undefined) {
      b.denials++;
      const codes = (b.byCode ??= new Map());
      codes.set(o.errorCode, (codes.get(o.errorCode) ?? 0) + 1);
      const policies = (b.byPolicy ??= new Map());
      const policy = o.policy ?? 'gateway';
      policies.set(policy, (policies.get(policy) ?? 0) + 1);
      const clients = (b.byClient ??= new Map());
      const key = clients.size < MAX_CLIENTS_PER_SECOND || clients.has(o.clientIp) ? o.clientIp : 'other';
      clients.set(key, (clients.get(key) ?? 0) + 1);
    }
  }

  /** The buckets of the `seconds` whole seconds before the current one (oldest first; missing ones empty). */
  #window(seconds: number): { until: number; buckets: (Bucket | undefined)[] } {
    const n = Math.max(1, Math.min(SECONDS - 1, Math.floor(seconds)));
    const current = Math.floor(this.#now() / 1000);
    const until = current - 1;
    const buckets: (Bucket | undefined)[] = [];
    for (let s = until - n + 1; s <= until; s++) {
      const b = this.#buckets[((s % SECONDS) + SECONDS) % SECONDS]!;
      buckets.push(b.second === s ? b : undefined);
    }
    return { until, buckets };
  }

  /** Totals over the last `seconds` whole seconds (the current, unfinished one is left out). */
  summary(seconds: number): TrafficSummary {
    const { until, buckets } = this.#window(seconds);
    const totals = sum(until, buckets);
    const latency = new Uint32Array(BINS);
    const codes = new Map<string, number>();
    const policies = new Map<string, number>();
    const clients = new Map<string, number>();
    for (const b of buckets) {
      if (b === undefined) continue;
      for (let i = 0; i < BINS; i++) latency[i]! += b.latency[i]!;
      if (b.byCode !== undefined) for (const [k, v] of b.byCode) codes.set(k, (codes.get(k) ?? 0) + v);
      if (b.byPolicy !== undefined) for (const [k, v] of b.byPolicy) policies.set(k, (policies.get(k) ?? 0) + v);
      if (b.byClient !== undefined) for (const [k, v] of b.byClient) clients.set(k, (clients.get(k) ?? 0) + v);
    }
    return {
      ...totals,
      rate: totals.requests / buckets.length,
      p50: quantile(latency, totals.requests, 0.5),
      p99: quantile(latency, totals.requests, 0.99),
      deniedBy: ranked(codes).map(([code, count]) => ({ code, count })),
      deniedByPolicy: ranked(policies).map(([policy, count]) => ({ policy, count })),
      topDeniedClients: ranked(clients).slice(0, 10).map(([clientIp, count]) => ({ clientIp, count })),
    };
  }

  /** The counts of `summary`, without merging latency histograms or the per-code and per-client maps. */
  totals(seconds: number): TrafficTotals {
    const { until, buckets } = this.#window(seconds);
    return sum(until, buckets);
  }

  /** One point per second over the last `seconds` whole seconds, oldest first. */
  series(seconds: number): TrafficPoint[] {
    const { until, buckets } = this.#window(seconds);
    const first = until - buckets.length + 1;
    return buckets.map((b, i) => ({
      t: first + i,
      requests: b?.requests ?? 0,
      status: b === undefined ? statusRecord(new Uint32Array(5)) : statusRecord(b.status),
      p50: b === undefined ? null : quantile(b.latency, b.requests, 0.5),
      p99: b === undefined ? null : quantile(b.latency, b.requests, 0.99),
      denials: b?.denials ?? 0,
      upstream5xx: b?.upstream5xx ?? 0,
    }));
  }
}

function sum(until: number, buckets: readonly (Bucket | undefined)[]): TrafficTotals {
  const status = new Uint32Array(5);
  let requests = 0, upstream = 0, upstream5xx = 0, upstreamErrors = 0, denials = 0;
  for (const b of buckets) {
    if (b === undefined) continue;
    requests += b.requests;
    upstream += b.upstream;
    upstream5xx += b.upstream5xx;
    upstreamErrors += b.upstreamErrors;
    denials += b.denials;
    for (let i = 0; i < 5; i++) status[i]! += b.status[i]!;
  }
  return { until, seconds: buckets.length, requests, status: statusRecord(status), upstream, upstream5xx, upstreamErrors, denials };
}

/** Most first, then by name. */
function ranked(counts: Map<string, number>): [string, number][] {
  return [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
}

function bin(ms: number): number {
  if (!(ms > BASE_MS)) return 0;
  const i = Math.ceil(Math.log(ms / BASE_MS) / LOG_FACTOR);
  return i >= BINS ? BINS - 1 : i;
}

/** The upper bound (ms, rounded to 3 significant digits) of the bin holding the q-quantile. */
function quantile(latency: Uint32Array, total: number, q: number): number | null {
  if (total === 0) return null;
  const rank = Math.ceil(q * total);
  let seen = 0;
  for (let i = 0; i < BINS; i++) {
    seen += latency[i]!;
    if (seen >= rank) return Number((BASE_MS * FACTOR ** i).toPrecision(3));
  }
  return Number((BASE_MS * FACTOR ** (BINS - 1)).toPrecision(3));
}

function statusRecord(counts: Uint32Array): Record<StatusClass, number> {
  return { '1xx': counts[0]!, '2xx': counts[1]!, '3xx': counts[2]!, '4xx': counts[3]!, '5xx': counts[4]! };
}
