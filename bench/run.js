// `npm run bench`: Rampart against the upstream alone and against a bare Fastify proxy, in one run.
// Every server is its own child process; autocannon drives them from this process, alternating the
// targets round by round, and the table shows medians over the rounds. See docs/benchmarks.md.
//
// Environment: BENCH_DURATION (s per run, 5), BENCH_ROUNDS (5), BENCH_CONNECTIONS (50),
// BENCH_WARMUP (s per target, 2), BENCH_TARGETS (comma list, all), BENCH_PROFILE (a target name:
// run that server under `node --cpu-prof` and summarize the profile; results go to a separate file).
import autocannon from 'autocannon';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, sign } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, createReadStream } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { CLK_TCK, cpuMicros, freePort, killAll, quickstartApiKey, quickstartToken, startNode, stop, waitReady } from './proc.js';
import { formatSummary, summarizeProfile } from './profile-summary.js';
import { measureObserve } from './observe.js';
import { formatScan, measureScan, SCAN_LIMIT_S } from './scan.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const path = (p) => join(root, p);

function envNumber(name, fallback, min) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min) {
    console.error(`bench: ${name} must be a number ≥ ${min} (got ${JSON.stringify(raw)})`);
    process.exit(2);
  }
  return n;
}

const ALL_TARGETS = ['direct', 'fastify-proxy', 'rampart-passthrough', 'rampart-jwt', 'rampart-ratelimit-memory', 'rampart-ratelimit-redis', 'rampart-openapi', 'rampart-quickstart', 'rampart-quickstart-apikey'];
const settings = {
  durationS: envNumber('BENCH_DURATION', 5, 1),
  rounds: Math.floor(envNumber('BENCH_ROUNDS', 5, 1)),
  connections: Math.floor(envNumber('BENCH_CONNECTIONS', 50, 1)),
  warmupS: envNumber('BENCH_WARMUP', 2, 0),
  pipelining: 1,
  method: 'GET',
  targets: process.env.BENCH_TARGETS ? process.env.BENCH_TARGETS.split(',').map((s) => s.trim()) : ALL_TARGETS,
  profile: process.env.BENCH_PROFILE || null,
};
for (const t of settings.targets) {
  if (!ALL_TARGETS.includes(t)) {
    console.error(`bench: unknown target ${t} (known: ${ALL_TARGETS.join(', ')})`);
    process.exit(2);
  }
}
if (settings.profile !== null && !settings.targets.includes(settings.profile)) {
  console.error(`bench: BENCH_PROFILE=${settings.profile} is not among the targets`);
  process.exit(2);
}

const tmp = mkdtempSync(join(os.tmpdir(), 'rampart-bench-'));
const profileDir = join(tmp, 'profiles');
let cleaningUp = false;

async function cleanup() {
  if (cleaningUp) return;
  cleaningUp = true;
  await killAll(10_000);
  rmSync(tmp, { recursive: true, force: true });
}

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    console.error(`\nbench: ${signal}, stopping the servers`);
    void cleanup().finally(() => process.exit(130));
  });
}

// Each run ends with autocannon dropping its connections mid-request; a short drain keeps the
// final SIGTERM quick so the servers exit cleanly (logs flushed, profile written). Not on the
// request path.
const DRAIN_TIMEOUT = '2s';

/**
 * Pass-through: one route, forwarding with only the core's request id and access log. Every
 * other policy that is on by default (security headers, CORS, …, as capabilities land) is turned
 * off here; `rampart-quickstart` measures the gateway with them on.
 */
const { builtinPolicies } = await import(new URL('../dist/policies/index.js', import.meta.url).href);
const PASSTHROUGH_POLICIES = new Set(['request-id', 'access-log']);
const passthroughDefaults = Object.fromEntries(
  [...builtinPolicies.values()].filter((p) => p.enabledByDefault && !PASSTHROUGH_POLICIES.has(p.name)).map((p) => [p.name, false]),
);

function passthroughConfig({ port, notesPort, logFile }) {
  return {
    defaults: passthroughDefaults,
    server: { listen: { host: '127.0.0.1', port }, drainTimeout: DRAIN_TIMEOUT },
    admin: { enabled: false },
    dataDir: join(tmp, 'data-passthrough'),
    log: { destination: logFile },
    upstreams: { notes: { targets: [{ url: `http://127.0.0.1:${notesPort}` }] } },
    // Plain HTTP on both sides, as the fastify-proxy baseline: the ratio is the gateway's own cost.
    routes: [{ name: 'notes', match: { path: '/api/notes', methods: ['GET'] }, upstream: 'notes', stripPrefix: '/api', public: true, allowInsecure: true }],
  };
}

/**
 * Pass-through plus the `jwt` policy (a static ES256 key, revocation in memory checked on every
 * hit): every request carries the same valid token, so the verified-token cache is what is
 * measured against pass-through.
 */
const jwtKeys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const jwtToken = (() => {
  const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const input = `${b64({ alg: 'ES256', typ: 'at+jwt' })}.${b64({ iss: 'https://bench.test', aud: 'notes', sub: 'bench-user', iat: now, exp: now + 3600, jti: 'bench-1', scope: 'notes:read' })}`;
  const signature = sign('sha256', Buffer.from(input), { key: jwtKeys.privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url');
  return `${input}.${signature}`;
})();

function jwtConfig({ port, notesPort, logFile }) {
  const config = passthroughConfig({ port, notesPort, logFile });
  const route = config.routes[0];
  delete route.public;
  route.policies = {
    jwt: { algorithms: ['ES256'], publicKeys: [jwtKeys.publicKey.export({ type: 'spki', format: 'pem' })], issuer: 'https://bench.test', audience: 'notes', typ: 'at+jwt', revocation: 'memory' },
  };
  return config;
}

/**
 * Pass-through plus one rate limit per client address that never refuses (the bench is one
 * address sending tens of thousands of requests): what a limit decision costs, in process memory
 * or in Redis (127.0.0.1:6379, a fresh key prefix per run).
 */
function rateLimitedConfig({ port, notesPort, logFile, store }) {
  const config = passthroughConfig({ port, notesPort, logFile });
  config.routes[0].policies = { 'rate-limit': { headers: 'all', limits: [{ key: ['ip'], algorithm: 'gcra', limit: 5_000_000, window: '1m', store }] } };
  if (store === 'redis') config.redis = { url: 'redis://127.0.0.1:6379', keyPrefix: `rampart-bench:${process.pid}:${Date.now()}:` };
  return config;
}

/**
 * Pass-through plus the `openapi` policy with the notes API's document (the quickstart's): the
 * request is matched to its operation and validated, and the JSON answer (a list of notes) is held,
 * parsed, walked by the response allowlist and sent — what validation plus allowlist cost on a
 * JSON route.
 */
function openApiConfig({ port, notesPort, logFile }) {
  const config = passthroughConfig({ port, notesPort, logFile });
  config.upstreams.notes.openapi = path('examples/quickstart/notes-openapi.yaml');
  config.routes[0].policies = { openapi: {} };
  return config;
}

/**
 * The quickstart config as it stands, with only what a benchmark must own overridden: the listen
 * port, the drain timeout, the log file, the data directory and the admin listener (off). The upstream URL keeps its
 * ${NOTES_PORT} interpolation and gets the bench's port through the environment.
 */
function quickstartConfig({ port, logFile }) {
  const config = parseYaml(readFileSync(path('examples/quickstart/rampart.yaml'), 'utf8'));
  // HTTPS with the development certificate, as `npm start` serves it; the redirecting plain-HTTP
  // listener is left out (nothing is measured on it).
  config.server = { ...config.server, listen: { host: '127.0.0.1', port }, drainTimeout: DRAIN_TIMEOUT };
  delete config.server.http;
  config.admin = { ...config.admin, enabled: false };
  config.log = { ...config.log, destination: logFile };
  config.dataDir = join(tmp, 'data-quickstart');
  // The config is written elsewhere: the notes API's OpenAPI document is named by its full path.
  for (const upstream of Object.values(config.upstreams ?? {})) {
    if (typeof upstream.openapi === 'string') upstream.openapi = path(join('examples/quickstart', upstream.openapi));
  }
  // One client address sends everything: the default per-IP limit (600/min) is raised so that it
  // is still checked on every request but never refuses.
  config.defaults = { ...config.defaults, 'ip-rate-limit': { ...config.defaults?.['ip-rate-limit'], limit: 5_000_000 } };
  return config;
}

async function startTargets(notesPort) {
  const targets = [];
  const profileArgs = (name) => (settings.profile === name ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []);
  const notesUrl = `http://127.0.0.1:${notesPort}`;
  for (const name of settings.targets) {
    if (name === 'direct') {
      targets.push({ name, url: `${notesUrl}/notes`, server: null });
      continue;
    }
    const port = await freePort();
    const quickstart = name === 'rampart-quickstart' || name === 'rampart-quickstart-apikey';
    const url = `${quickstart ? 'https' : 'http'}://127.0.0.1:${port}/api/notes`;
    let handle;
    let configText = null;
    let logFile = null;
    if (name === 'fastify-proxy') {
      handle = startNode(name, [...profileArgs(name), path('bench/baseline-proxy.js')], { PORT: String(port), UPSTREAM_URL: notesUrl });
    } else {
      logFile = join(tmp, `${name}.log`);
      const config =
        name === 'rampart-passthrough'
          ? passthroughConfig({ port, notesPort, logFile })
          : name === 'rampart-jwt'
            ? jwtConfig({ port, notesPort, logFile })
            : name === 'rampart-ratelimit-memory' || name === 'rampart-ratelimit-redis'
            ? rateLimitedConfig({ port, notesPort, logFile, store: name.slice('rampart-ratelimit-'.length) })
              : name === 'rampart-openapi'
                ? openApiConfig({ port, notesPort, logFile })
                : quickstartConfig({ port, logFile });
      configText = stringifyYaml(config);
      const configFile = join(tmp, `${name}.yaml`);
      writeFileSync(configFile, configText);
      handle = startNode(name, [...profileArgs(name), path('dist/cli/main.js'), 'start', '-c', configFile], {
        NOTES_PORT: String(notesPort),
        RAMPART_PORT: String(port),
      });
    }
    let headers = name === 'rampart-jwt' ? { authorization: `Bearer ${jwtToken}` } : undefined;
    if (quickstart) {
      // Its notes API is behind login: wait for the identity service, then log in as a bench user
      // (and, for the API-key target, make a key with that login: every request then carries it).
      await waitReady(handle, `https://127.0.0.1:${port}/.well-known/jwks.json`);
      const token = await quickstartToken(`https://127.0.0.1:${port}`);
      headers = name === 'rampart-quickstart' ? { authorization: `Bearer ${token}` } : { 'x-api-key': await quickstartApiKey(`https://127.0.0.1:${port}`, token) };
    }
    await waitReady(handle, url, undefined, headers);
    targets.push({ name, url, server: handle, config: configText, logFile, headers });
  }
  return targets;
}

function load(url, durationS, headers) {
  return new Promise((resolve, reject) => {
    autocannon(
      { url, method: settings.method, connections: settings.connections, pipelining: settings.pipelining, duration: durationS, ...(headers ? { headers } : {}) },
      (error, result) => (error ? reject(error) : resolve(result)),
    );
  });
}

/** One autocannon run against a target, with the CPU time its server process spent meanwhile. */
async function measure(target, notes, durationS) {
  const alive = () => {
    for (const h of [target.server, notes]) {
      if (h?.exited) throw new Error(`${h.name} exited (${h.exitCode}):\n${h.output()}`);
    }
  };
  alive();
  const pid = target.server?.pid ?? notes.pid;
  const cpu0 = cpuMicros(pid);
  const up0 = cpuMicros(notes.pid);
  const gen0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const r = await load(target.url, durationS, target.headers);
  const wallUs = Number(process.hrtime.bigint() - t0) / 1000;
  const gen = process.cpuUsage(gen0);
  await sleep(0); // let a pending 'exit' event land before /proc is read
  alive();
  const cpu = cpuMicros(pid) - cpu0;
  const upstreamCpu = cpuMicros(notes.pid) - up0;
  const requests = r.requests.total;
  return {
    reqPerSec: round(requests / r.duration, 1),
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    requests,
    ok2xx: r['2xx'],
    non2xx: r.non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
    statusCodes: r.statusCodeStats,
    cpuUsPerReq: requests > 0 ? round(cpu / requests, 1) : null,
    upstreamCpuUsPerReq: target.server && requests > 0 ? round(upstreamCpu / requests, 1) : null,
    serverCpuPct: round((100 * cpu) / wallUs, 1),
    loadgenCpuPct: round((100 * (gen.user + gen.system)) / wallUs, 1),
    durationS: r.duration,
  };
}

const round = (n, digits) => Math.round(n * 10 ** digits) / 10 ** digits;
function median(values) {
  const v = values.filter((x) => typeof x === 'number').sort((a, b) => a - b);
  if (v.length === 0) return null;
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

/** Counts the access-log lines of a Rampart target by level and status, to check nothing went wrong. */
async function logStats(file) {
  const stats = { lines: 0, accessLines: 0, aborted: 0, byLevel: {}, byStatus: {}, sample: {}, notable: {} };
  try {
    statSync(file);
  } catch {
    return null;
  }
  const rl = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
  for await (const line of rl) {
    if (line === '') continue;
    stats.lines++;
    let rec;
    try {
      rec = JSON.parse(line);
    } catch {
      stats.byLevel.unparsable = (stats.byLevel.unparsable ?? 0) + 1;
      continue;
    }
    stats.byLevel[rec.level] = (stats.byLevel[rec.level] ?? 0) + 1;
    const status = rec.type === 'access' ? rec.status : undefined;
    if (rec.aborted === true) stats.aborted++;
    if (status !== undefined) {
      stats.accessLines++;
      stats.byStatus[status] = (stats.byStatus[status] ?? 0) + 1;
    }
    // Keep the first access line and every distinct warning or error (by message) as evidence.
    if (status !== undefined && !stats.sample.access) stats.sample.access = rec;
    if (rec.level !== 'info' && rec.level !== 'debug' && rec.level !== 'trace') {
      const key = `${rec.level}: ${rec.msg}`;
      stats.notable[key] ??= { count: 0, first: rec };
      stats.notable[key].count++;
    }
  }
  return stats;
}

function gitInfo() {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim();
    const changed = execFileSync('git', ['status', '--porcelain', '--', 'src'], { cwd: root, encoding: 'utf8' }).trim();
    return { commit, srcDirty: changed !== '', srcChanges: changed === '' ? [] : changed.split('\n') };
  } catch {
    return null;
  }
}

function table(rows) {
  const header = ['target', 'req/s', 'p50 ms', 'p99 ms', 'CPU µs/req', '× direct', '× fastify-proxy', 'errors'];
  const body = rows.map((r) => [
    r.name,
    r.reqPerSec?.toFixed(0) ?? '-',
    r.p50Ms ?? '-',
    r.p99Ms ?? '-',
    r.cpuUsPerReq?.toFixed(1) ?? '-',
    r.vsDirect?.toFixed(2) ?? '-',
    r.vsFastifyProxy?.toFixed(2) ?? '-',
    r.errorsTotal,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => String(b[i]).length)));
  const line = (cells) => cells.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

async function main() {
  const started = Date.now();
  const git = gitInfo(); // at start: others may edit src/ while the bench runs
  const machine = {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? null,
    memoryMiB: Math.round(os.totalmem() / 2 ** 20),
    platform: `${os.platform()} ${os.release()}`,
    node: process.version,
    clkTck: CLK_TCK,
    // Other work on the machine skews every number; the load average shows whether there was any.
    loadavgAtStart: os.loadavg().map((x) => round(x, 2)),
  };
  console.log(
    `bench: ${settings.targets.length} targets × ${settings.rounds} rounds × ${settings.durationS}s, ` +
      `${settings.connections} connections, warm-up ${settings.warmupS}s; node ${process.version}, ${machine.cpus} CPUs`,
  );

  const notesPort = await freePort();
  // Public pass-through targets send no caller id: the notes API files them under one owner.
  const notes = startNode('notes-api', [path('examples/quickstart/notes-api.js')], { NOTES_PORT: String(notesPort), NOTES_ANONYMOUS_AS: 'bench' });
  await waitReady(notes, `http://127.0.0.1:${notesPort}/notes`);
  // Ten notes for the public targets' shared owner: every GET /notes answers a realistic JSON list
  // (about 2 KB), which response filters have to read.
  for (let i = 0; i < 10; i++) {
    const seeded = await fetch(`http://127.0.0.1:${notesPort}/notes`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-consumer-id': 'bench' },
      body: JSON.stringify({ title: `Note ${i + 1}`, body: `Shopping list, meeting notes and ideas, number ${i + 1}. `.repeat(2) }),
    });
    if (seeded.status !== 201) throw new Error(`bench: seeding the notes API answered ${seeded.status}`);
  }
  const targets = await startTargets(notesPort);
  console.log(`bench: servers up (notes API pid ${notes.pid}; ${targets.filter((t) => t.server).map((t) => `${t.name} pid ${t.server.pid}`).join(', ')})`);

  const warmups = {};
  if (settings.warmupS > 0) {
    for (const t of targets) {
      const w = await measure(t, notes, settings.warmupS);
      warmups[t.name] = w;
      console.log(`  warm-up  ${t.name.padEnd(20)} ${w.reqPerSec.toFixed(0).padStart(7)} req/s`);
    }
  }

  const runs = Object.fromEntries(targets.map((t) => [t.name, []]));
  const orders = [];
  for (let r = 0; r < settings.rounds; r++) {
    // Alternate: every round visits every target once, starting one place further along each time.
    const order = targets.map((_, i) => targets[(i + r) % targets.length]);
    orders.push(order.map((t) => t.name));
    for (const t of order) {
      await sleep(250);
      const m = await measure(t, notes, settings.durationS);
      runs[t.name].push({ round: r + 1, ...m });
      const errs = m.errors + m.timeouts + m.non2xx;
      console.log(
        `  round ${r + 1}  ${t.name.padEnd(20)} ${m.reqPerSec.toFixed(0).padStart(7)} req/s  p50 ${m.p50Ms} ms  p99 ${m.p99Ms} ms  ` +
          `${m.cpuUsPerReq} µs/req  server ${m.serverCpuPct}% CPU  loadgen ${m.loadgenCpuPct}%${errs ? `  ERRORS ${errs}` : ''}`,
      );
    }
  }

  const medians = {};
  for (const t of targets) {
    const rs = runs[t.name];
    const pick = (k) => median(rs.map((x) => x[k]));
    medians[t.name] = {
      reqPerSec: pick('reqPerSec'),
      p50Ms: pick('p50Ms'),
      p99Ms: pick('p99Ms'),
      cpuUsPerReq: pick('cpuUsPerReq'),
      upstreamCpuUsPerReq: pick('upstreamCpuUsPerReq'),
      serverCpuPct: pick('serverCpuPct'),
      loadgenCpuPct: pick('loadgenCpuPct'),
      errorsTotal: rs.reduce((s, x) => s + x.errors + x.timeouts + x.non2xx, 0) + (warmups[t.name] ? warmups[t.name].errors + warmups[t.name].timeouts + warmups[t.name].non2xx : 0),
    };
  }
  const ratios = {};
  for (const t of targets) {
    const m = medians[t.name];
    ratios[t.name] = {
      vsDirect: medians.direct ? round(m.reqPerSec / medians.direct.reqPerSec, 3) : null,
      vsFastifyProxy: medians['fastify-proxy'] ? round(m.reqPerSec / medians['fastify-proxy'].reqPerSec, 3) : null,
      vsPassthrough: medians['rampart-passthrough'] ? round(m.reqPerSec / medians['rampart-passthrough'].reqPerSec, 3) : null,
    };
  }

  // Stop the servers gracefully so their logs are flushed (and a profile, if asked for, is written).
  const shutdown = {};
  for (const t of targets) {
    if (!t.server) continue;
    const t0 = Date.now();
    await stop(t.server, 10_000);
    shutdown[t.name] = { exit: t.server.exitCode, ms: Date.now() - t0 };
  }
  const logs = {};
  for (const t of targets) if (t.logFile) logs[t.name] = await logStats(t.logFile);

  const acceptance =
    medians['rampart-passthrough'] && medians['fastify-proxy']
      ? { rule: 'median rampart-passthrough req/s ≥ 0.9 × median fastify-proxy req/s', ratio: ratios['rampart-passthrough'].vsFastifyProxy }
      : null;
  if (acceptance) {
    acceptance.pass = acceptance.ratio >= 0.9;
    // The same comparison paired round by round: both targets of a round ran back to back, so the
    // machine's drift (other work on shared cores) cancels out. Reported alongside, not instead.
    const paired = runs['rampart-passthrough'].map((r, i) => r.reqPerSec / runs['fastify-proxy'][i].reqPerSec);
    acceptance.pairedRatios = paired.map((x) => round(x, 3));
    acceptance.pairedMedian = round(median(paired), 3);
  }

  console.log(`\nmedians over ${settings.rounds} rounds (${new Date().toISOString()}):\n`);
  console.log(table(targets.map((t) => ({ name: t.name, ...medians[t.name], ...ratios[t.name] }))));
  if (acceptance) {
    console.log(`\nacceptance: ${acceptance.rule}: ${acceptance.ratio.toFixed(3)} → ${acceptance.pass ? 'PASS' : 'FAIL'}`);
    console.log(`  paired per round: ${acceptance.pairedRatios.map((x) => x.toFixed(2)).join(' ')} (median ${acceptance.pairedMedian.toFixed(3)})`);
  }
  if (ratios['rampart-jwt']?.vsPassthrough != null) {
    const r = ratios['rampart-jwt'].vsPassthrough;
    console.log(`jwt (verified-token cache, revocation checked): ${r.toFixed(3)} × pass-through req/s (target ≥ 0.85), ${medians['rampart-jwt'].cpuUsPerReq} vs ${medians['rampart-passthrough'].cpuUsPerReq} CPU µs/req`);
  }
  if (ratios['rampart-openapi']?.vsPassthrough != null) {
    const r = ratios['rampart-openapi'].vsPassthrough;
    console.log(`openapi (request validation + response allowlist on a 10-note JSON list): ${r.toFixed(3)} × pass-through req/s, ${medians['rampart-openapi'].cpuUsPerReq} vs ${medians['rampart-passthrough'].cpuUsPerReq} CPU µs/req`);
  }
  for (const name of ['rampart-ratelimit-memory', 'rampart-ratelimit-redis']) {
    const r = ratios[name];
    if (r?.vsPassthrough != null) {
      console.log(`rate limit ${name.slice('rampart-ratelimit-'.length)}: ${r.vsPassthrough.toFixed(3)} × pass-through req/s, ${medians[name].cpuUsPerReq} vs ${medians['rampart-passthrough'].cpuUsPerReq} CPU µs/req`);
    }
  }
  for (const [name, s] of Object.entries(logs)) {
    if (s === null) {
      console.log(`log ${name}: no log file written`);
      continue;
    }
    console.log(`log ${name}: ${s.lines} lines, ${s.accessLines} access ${JSON.stringify(s.byStatus)} (${s.aborted} aborted), levels ${JSON.stringify(s.byLevel)}`);
    for (const [key, n] of Object.entries(s.notable)) console.log(`  ${n.count}× ${key}  e.g. ${JSON.stringify(n.first)}`);
  }
  for (const [name, s] of Object.entries(shutdown)) {
    if (s.exit !== 0) console.log(`shutdown ${name}: exit ${s.exit} after ${s.ms} ms (not a clean exit)`);
  }

  let profile = null;
  if (settings.profile) {
    const files = existsSync(profileDir) ? readdirSync(profileDir) : [];
    const profiles = files.filter((f) => f.endsWith('.cpuprofile'));
    if (profiles.length === 0) {
      console.log(`\nprofile: ${settings.profile} wrote no .cpuprofile (did it exit cleanly?)`);
    } else {
      // A V8 CPU profile (JSON; opens in Chrome DevTools or speedscope). *.json here is git-ignored.
      const dest = path(`bench/results/profile-${settings.profile}.json`);
      writeFileSync(dest, readFileSync(join(profileDir, profiles[0])));
      profile = { file: dest, summary: summarizeProfile(dest, 30) };
      console.log(`\nprofile of ${settings.profile} (${dest}):\n${formatSummary(profile.summary)}`);
    }
  }

  machine.loadavgAtEnd = os.loadavg().map((x) => round(x, 2));
  const totalS = round((Date.now() - started) / 1000, 1);
  // The observe phase in isolation (metrics + live traffic figures), per request.
  const observe = measureObserve(1_000_000);
  console.log(`\nobserve phase (metrics + traffic figures): ${observe.answeredUs.toFixed(2)} µs per answered request, ${observe.deniedUs.toFixed(2)} µs per denied one`);
  // A full rampart scan of its fixture, --safe at the default rate (issue 10: under a minute).
  const scan = await measureScan();
  console.log(`\n${formatScan(scan)}`);
  const report = {
    observe,
    scan,
    date: new Date().toISOString(),
    machine,
    git,
    settings,
    totalSeconds: totalS,
    orders,
    warmups,
    runs,
    medians,
    ratios,
    acceptance,
    logs,
    shutdown,
    configs: Object.fromEntries(targets.filter((t) => t.config).map((t) => [t.name, t.config])),
    profile,
  };
  mkdirSync(path('bench/results'), { recursive: true });
  const out = path(settings.profile ? 'bench/results/latest-profiled.json' : 'bench/results/latest.json');
  writeFileSync(out, JSON.stringify(report, null, 2) + '\n');
  console.log(`\nbench: ${totalS}s; results in ${out.slice(root.length)}${settings.profile ? ' (profiled: numbers of the profiled target are not comparable)' : ''}`);

  if (scan.some((r) => r.seconds >= SCAN_LIMIT_S)) {
    console.error(`bench: a full scan of the fixture took ${SCAN_LIMIT_S} s or more`);
    return 1;
  }
  const failed = targets.filter((t) => medians[t.name].errorsTotal > 0);
  if (failed.length > 0) {
    console.error(`bench: errors or non-2xx answers from ${failed.map((t) => `${t.name} (${medians[t.name].errorsTotal})`).join(', ')}`);
    return 1;
  }
  return 0;
}

let code = 1;
try {
  code = await main();
} catch (error) {
  console.error(`bench: ${error.stack ?? error.message}`);
} finally {
  await cleanup();
}
process.exit(code);
