import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, errorText, type Overview, type SeriesPoint, type StatusClasses } from '../api';
import { Chart, type ChartSeries } from '../chart';
import { isLive, onTick } from '../live';
import { count, rate, time, useInterval } from '../util';

/** Seconds the figures cover (the API keeps 600). */
const WINDOWS = [
  { seconds: 60, label: '1 min' },
  { seconds: 300, label: '5 min' },
  { seconds: 599, label: '10 min' },
];
const CLASSES = ['2xx', '3xx', '4xx', '5xx', '1xx'] as const;

const TRAFFIC: ChartSeries[] = [
  { label: 'requests/s', color: '#2f6fed', fill: 'rgba(47,111,237,0.12)' },
  { label: 'denials/s', color: '#e0483e', fill: 'rgba(224,72,62,0.10)' },
];
const LATENCY: ChartSeries[] = [
  { label: 'p50', color: '#16a34a' },
  { label: 'p99', color: '#d97706' },
];

/** Adds or replaces points by second, oldest first, keeping the last `window` seconds. */
function merge(points: SeriesPoint[], added: SeriesPoint[], window: number): SeriesPoint[] {
  const bySecond = new Map(points.map((p) => [p.t, p]));
  for (const p of added) if (typeof p.t === 'number') bySecond.set(p.t, p);
  const sorted = [...bySecond.values()].sort((a, b) => a.t - b.t);
  const newest = sorted.at(-1)?.t ?? 0;
  return sorted.filter((p) => p.t > newest - window);
}

export function OverviewPage() {
  const [overview, setOverview] = useState<Overview | undefined>();
  const [points, setPoints] = useState<SeriesPoint[]>([]);
  const [error, setError] = useState<string | undefined>();
  const [seconds, setSeconds] = useState(300);
  const lastFetch = useRef(0);

  const load = async (withSeries: boolean) => {
    lastFetch.current = Date.now();
    try {
      const o = await api<Overview>('GET', `/api/overview?window=${seconds}`);
      setOverview(o);
      setError(undefined);
      if (withSeries && Array.isArray(o.series)) setPoints(merge([], o.series, seconds));
    } catch (e) {
      setError(errorText(e));
    }
  };

  useEffect(() => {
    void load(true);
    return onTick((point) => {
      setPoints((current) => merge(current, [point], seconds));
      // Breakdowns (codes, clients) are not in the tick: fetch them soon after a denial.
      if ((point.denials ?? 0) > 0 && Date.now() - lastFetch.current > 1000) void load(false);
    });
  }, [seconds]);

  // Without the live stream, poll; with it, refresh the breakdowns now and then.
  useInterval(() => {
    if (!isLive()) void load(true);
    else if (Date.now() - lastFetch.current > 5000) void load(false);
  }, 2000);

  const totals = useMemo(() => {
    const status: Required<StatusClasses> = { '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 };
    let requests = 0;
    let denials = 0;
    for (const p of points) {
      requests += p.requests ?? 0;
      denials += p.denials ?? 0;
      for (const c of CLASSES) status[c] += p.status?.[c] ?? 0;
    }
    return { requests, denials, status };
  }, [points]);

  const traffic = useMemo(() => [points.map((p) => p.t), points.map((p) => p.requests ?? 0), points.map((p) => p.denials ?? 0)], [points]);
  const latency = useMemo(() => [points.map((p) => p.t), points.map((p) => p.p50), points.map((p) => p.p99)], [points]);

  const summary = overview?.summary;
  const last = points.at(-1);
  const currentRate = last !== undefined ? (last.rate ?? last.requests) : summary?.rate;

  return (
    <section data-testid="page-overview">
      <header class="page-head">
        <h1>Overview</h1>
        <div class="segmented" role="group" aria-label="Time window" data-testid="overview-window">
          {WINDOWS.map((w) => (
            <button key={w.seconds} type="button" class={w.seconds === seconds ? 'active' : ''} aria-pressed={w.seconds === seconds} onClick={() => setSeconds(w.seconds)} data-testid={`window-${w.seconds}`}>
              {w.label}
            </button>
          ))}
        </div>
        <span class="muted">{overview?.config?.version !== undefined ? `config v${overview.config.version}, ${count(overview.config.routes)} routes, loaded ${time(overview.config.loadedAt)}` : ''}</span>
      </header>
      {error !== undefined && <p class="error" role="alert">{error}</p>}

      <div class="tiles">
        <Tile label="Requests" value={count(totals.requests)} testid="stat-requests" />
        <Tile label="Requests/s" value={rate(currentRate)} testid="stat-rate" />
        <Tile label="Denials" value={count(totals.denials)} testid="stat-denials" tone={totals.denials > 0 ? 'warn' : undefined} />
        <Tile label="5xx" value={count(totals.status['5xx'])} testid="stat-5xx" tone={totals.status['5xx'] > 0 ? 'bad' : undefined} />
        <Tile label="Latency p50 / p99" value={latency2(summary?.p50, summary?.p99)} testid="stat-latency" />
        <Tile label="Alerts firing" value={count(overview?.alerts?.firing)} testid="stat-alerts" tone={(overview?.alerts?.firing ?? 0) > 0 ? 'bad' : undefined} />
      </div>

      <div class="grid two">
        <Chart title="Traffic" series={TRAFFIC} data={traffic} testid="chart-traffic" />
        <Chart title="Latency" series={LATENCY} data={latency} unit=" ms" testid="chart-latency" />
      </div>

      <div class="card">
        <h2>Status classes</h2>
        <StatusBar status={totals.status} />
      </div>

      <div class="grid three">
        <Breakdown title="Denials by code" testid="denials-by-code" rows={(summary?.deniedBy ?? []).map((d) => [d.code, d.count])} mono />
        <Breakdown
          title={overview?.deniedByPolicy !== undefined ? 'Denials by policy / area' : 'Denials by area'}
          testid="denials-by-area"
          rows={[...(overview?.deniedByPolicy ?? []).map((d): [string, number] => [d.policy, d.count]), ...(overview?.deniedByArea ?? []).map((d): [string, number] => [d.area, d.count])]}
        />
        <Breakdown title="Top denied clients" testid="top-denied-clients" rows={(summary?.topDeniedClients ?? []).map((d) => [d.clientIp, d.count])} mono />
      </div>

      {overview?.events?.last24h !== undefined && (
        <div class="card">
          <h2>Security events, last 24 hours</h2>
          <div class="inline-stats">
            {Object.entries(overview.events.last24h).map(([level, n]) => (
              <a href={`#/events?level=${level}`} key={level} class={`badge level-${level.toLowerCase()}`}>
                {level} {count(n)}
              </a>
            ))}
          </div>
        </div>
      )}
    </section>
  );
}

function latency2(p50: number | null | undefined, p99: number | null | undefined): string {
  if (typeof p50 !== 'number' && typeof p99 !== 'number') return '–';
  const short = (v: number | null | undefined) => (typeof v !== 'number' ? '–' : v >= 100 ? v.toFixed(0) : v.toFixed(1));
  return `${short(p50)} / ${short(p99)} ms`;
}

function Tile({ label, value, testid, tone }: { label: string; value: string; testid: string; tone?: 'warn' | 'bad' | undefined }) {
  return (
    <div class={`card tile ${tone ?? ''}`}>
      <div class="tile-label">{label}</div>
      <div class="tile-value" data-testid={testid}>
        {value}
      </div>
    </div>
  );
}

function StatusBar({ status }: { status: Required<StatusClasses> }) {
  const total = CLASSES.reduce((sum, c) => sum + status[c], 0);
  return (
    <div data-testid="status-classes">
      <div class="status-bar">
        {total === 0 && <div class="seg empty" style={{ width: '100%' }} />}
        {total > 0 && CLASSES.filter((c) => status[c] > 0).map((c) => <div key={c} class={`seg s${c}`} style={{ width: `${(status[c] / total) * 100}%` }} title={`${c}: ${status[c]}`} />)}
      </div>
      <div class="legend">
        {CLASSES.map((c) => (
          <span key={c} class="legend-item" data-testid={`status-${c}`}>
            <span class={`swatch s${c}`} /> {c} <b>{count(status[c])}</b>
          </span>
        ))}
      </div>
    </div>
  );
}

function Breakdown({ title, rows, testid, mono }: { title: string; rows: [string, number][]; testid: string; mono?: boolean }) {
  const max = Math.max(1, ...rows.map((r) => r[1]));
  return (
    <div class="card" data-testid={testid}>
      <h2>{title}</h2>
      {rows.length === 0 && <p class="muted">None in this window.</p>}
      <ul class="bars">
        {rows.slice(0, 8).map(([name, n]) => (
          <li key={name}>
            <span class={mono ? 'mono' : ''}>{name}</span>
            <b>{count(n)}</b>
            <span class="bar" style={{ width: `${(n / max) * 100}%` }} />
          </li>
        ))}
      </ul>
    </div>
  );
}
