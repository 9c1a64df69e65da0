import proxyaddr from 'proxy-addr';
import type { RampartConfig } from './schema.js';
import { parseDuration, parseSize } from './units.js';
import { didYouMean, type ConfigIssue } from './errors.js';
import type { Purpose, Source } from './load.js';
import { checkLifecycle, checkVersions } from './versions.js';
import { checkAlerts } from './alerts.js';

/** Checks the schema cannot express: references between sections, path templates, CIDRs. */
export function checkSemantics(config: RampartConfig, source: Source, issues: ConfigIssue[], purpose: Purpose, warnings: ConfigIssue[]): void {
  checkTransport(config, source, issues, purpose, warnings);
  checkIdentity(config, source, issues);
  checkVersions(config, source, issues, warnings);
  checkAlerts(config, source, issues);
  checkLog(config, source, issues);
  if (config.identity?.enabled === true) {
    checkLifecycle(config.identity.usersApi.v1, (...rest) => ['identity', 'usersApi', 'v1', ...rest], source, issues, warnings, Date.now(), 'the users API v1 (/api/v1/users)');
  }
  if (config.identity?.enabled === true && config.storage.url.startsWith('postgres') && config.redis === undefined) {
    warnings.push(
      source.issue(['storage', 'url'], 'the identity service shares PostgreSQL but no redis is configured: revocations (logout) and rate limits are per process, so other nodes accept a logged-out access token until it expires. Configure redis for more than one node.'),
    );
  }
  config.server.trustedProxies.forEach((entry, i) => {
    try {
      proxyaddr.compile(entry);
    } catch {
      issues.push(source.issue(['server', 'trustedProxies', i], `expected an IP address, a CIDR range or loopback/linklocal/uniquelocal, got '${entry}'`));
    }
  });

  // A zero timeout means "none" to Node and undici: never let a typo switch one off silently.
  for (const [key, value] of Object.entries(config.server.timeouts)) {
    if (parseDuration(value) === 0) issues.push(source.issue(['server', 'timeouts', key], 'expected a duration above 0 (0 would disable this timeout)'));
  }
  for (const [name, upstream] of Object.entries(config.upstreams)) {
    // The schema's pattern lets through what `new URL` refuses (`http://.0.0.1`, a port over 65535).
    upstream.targets.forEach((target, i) => {
      if (!URL.canParse(target.url)) issues.push(source.issue(['upstreams', name, 'targets', i, 'url'], `expected an http:// or https:// URL with no query or fragment, got '${target.url}'`));
    });
    for (const [key, value] of Object.entries(upstream.timeouts)) {
      if (parseDuration(value) === 0) issues.push(source.issue(['upstreams', name, 'timeouts', key], 'expected a duration above 0 (0 would disable this timeout)'));
    }
    const host = upstream.host;
    if (host !== 'target' && host !== 'preserve' && !/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:\d{1,5})?$/i.test(host)) {
      issues.push(source.issue(['upstreams', name, 'host'], `expected 'target', 'preserve' or a host name, got '${host}'`));
    }
  }

  const names = new Map<string, number>();
  const upstreamNames = Object.keys(config.upstreams);
  config.routes.forEach((route, i) => {
    const at = (...rest: (string | number)[]) => ['routes', i, ...rest];
    const first = names.get(route.name);
    if (first !== undefined) issues.push(source.issue(at('name'), `duplicate route name '${route.name}' (also routes[${first}])`));
    else names.set(route.name, i);

    if (route.upstream === undefined) {
      if (purpose === 'gateway') issues.push(source.issue(at(), `route '${route.name}' needs an 'upstream'`));
    } else if (purpose === 'library') {
      issues.push(source.issue(at('upstream'), 'routes of the Fastify plugin are served by the host app and cannot name an upstream'));
    } else if (!Object.hasOwn(config.upstreams, route.upstream)) {
      const suggestion = didYouMean(route.upstream, upstreamNames);
      const hint = suggestion !== undefined ? ` (did you mean '${suggestion}'?)` : upstreamNames.length > 0 ? `; defined: ${upstreamNames.join(', ')}` : '; no upstreams are defined';
      issues.push(source.issue(at('upstream'), `unknown upstream '${route.upstream}'${hint}`));
    }

    const pathProblem = checkPathPattern(route.match.path);
    if (pathProblem !== undefined) issues.push(source.issue(at('match', 'path'), pathProblem));

    if (route.stripPrefix !== undefined && route.rewrite !== undefined) {
      issues.push(source.issue(at('rewrite'), "use either 'stripPrefix' or 'rewrite', not both"));
    }
    if (route.stripPrefix !== undefined) {
      // Only whole segments: `/api` may be stripped from `/api` or `/api/…`, never from `/api*`
      // (which also matches `/apifoo`).
      const pattern = route.match.path;
      const p = route.stripPrefix;
      if (!(pattern === p || pattern.startsWith(p + '/'))) {
        issues.push(source.issue(at('stripPrefix'), `'${p}' is not a literal prefix of the path pattern '${route.match.path}'`));
      }
    }
    if (route.rewrite !== undefined) {
      const params = new Set(paramNames(route.match.path));
      for (const used of paramNames(route.rewrite)) {
        if (!params.has(used)) issues.push(source.issue(at('rewrite'), `parameter ':${used}' is not in the path pattern '${route.match.path}'`));
      }
      if (route.rewrite.includes('*') && !route.match.path.endsWith('*')) {
        issues.push(source.issue(at('rewrite'), `'*' is used but the path pattern '${route.match.path}' has no wildcard`));
      }
    }
  });
}

/** HTTPS settings, and warnings for every way plain HTTP can be served. */
function checkLog(config: RampartConfig, source: Source, issues: ConfigIssue[]): void {
  const { destination, rotate } = config.log;
  if (rotate === undefined) return;
  if (destination === 'stdout' || destination === 'stderr') issues.push(source.issue(['log', 'rotate'], `rotation needs a file destination; log.destination is '${destination}'`));
  if (parseSize(rotate.maxSize) < 1024) issues.push(source.issue(['log', 'rotate', 'maxSize'], 'expected a size of at least 1KiB'));
  if (rotate.interval !== undefined && parseDuration(rotate.interval) < 1000) issues.push(source.issue(['log', 'rotate', 'interval'], 'expected a duration of at least 1s'));
}

function checkTransport(config: RampartConfig, source: Source, issues: ConfigIssue[], purpose: Purpose, warnings: ConfigIssue[]): void {
  const server = config.server;
  if (server.tls === 'auto' && config.mode !== 'development') {
    issues.push(source.issue(['server', 'tls'], "'auto' makes a self-signed certificate and is allowed only with 'mode: development'; give cert and key files in production"));
  }
  if (server.http !== undefined) {
    if (server.tls === undefined) issues.push(source.issue(['server', 'http'], 'a plain-HTTP listener next to the gateway listener needs server.tls (the gateway listener is plain HTTP already)'));
    const a = server.http.listen;
    const b = server.listen;
    if (a.port !== 0 && a.port === b.port && (a.host === b.host || a.host === '0.0.0.0' || b.host === '0.0.0.0' || a.host === '::' || b.host === '::')) {
      issues.push(source.issue(['server', 'http', 'listen', 'port'], `port ${a.port} is already the gateway listener's port`));
    }
  }
  const admin = config.admin;
  if (admin.enabled && admin.tls && server.tls === undefined) {
    issues.push(source.issue(['admin', 'tls'], 'the admin listener uses the gateway\'s certificate: set server.tls'));
  }
  if (admin.enabled && !admin.tls && !isLoopbackHost(admin.listen.host)) {
    issues.push(source.issue(['admin', 'listen', 'host'], `the admin listener on '${admin.listen.host}' would carry admin credentials over plain HTTP: bind it to 127.0.0.1 or ::1, or set admin.tls: true`));
  }
  if (purpose !== 'gateway') return;
  config.routes.forEach((route, i) => {
    if (route.allowInsecure) {
      warnings.push(source.issue(['routes', i, 'allowInsecure'], `route '${route.name}' is served over plain HTTP: anything sent to it can be read and changed on the way`));
    }
  });
  if (server.tls === undefined && server.trustedProxies.length === 0 && config.routes.some((r) => !r.allowInsecure)) {
    warnings.push(
      source.issue(
        ['server'],
        "no HTTPS: server.tls is not set and no trusted proxy can say a request came over HTTPS (server.trustedProxies), so requests to routes without 'allowInsecure' will only be redirected to https",
      ),
    );
  }
}

/** 127.0.0.0/8, ::1 and `localhost`: addresses only this machine can reach. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host);
}

export function paramNames(pattern: string): string[] {
  return [...pattern.matchAll(/:([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => m[1]!);
}

/** Literal segments, `:name` segments, and at most one `*` as the last character. */
function checkPathPattern(path: string): string | undefined {
  const star = path.indexOf('*');
  if (star !== -1 && star !== path.length - 1) return `'*' may only end the path pattern, got '${path}'`;
  const segments = path.split('/').slice(1);
  const seen = new Set<string>();
  for (const segment of segments) {
    if (segment === '.' || segment === '..') return `dot segments are not allowed in a path pattern, got '${path}'`;
    if (segment.startsWith(':')) {
      const name = segment.slice(1);
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) return `invalid parameter ':${name}': expected a whole segment ':name' of letters, digits and '_'`;
      if (seen.has(name)) return `parameter ':${name}' appears twice`;
      seen.add(name);
    } else if (segment.includes(':')) {
      return `':' must start a whole segment, got '${segment}'`;
    } else if (!/^[A-Za-z0-9._~-]*\*?$/.test(segment)) {
      // Literals are limited to unreserved characters so that the normalized request path and the
      // pattern agree byte for byte (see gateway/path.ts).
      return `literal path segments may only contain letters, digits, '.', '_', '~' and '-', got '${segment}'`;
    }
  }
  return undefined;
}

/** The identity service's settings that depend on each other or on the mode. */
function checkIdentity(config: RampartConfig, source: Source, issues: ConfigIssue[]): void {
  const identity = config.identity;
  if (identity === undefined || !identity.enabled) return;
  if (identity.masterKey === undefined && config.mode !== 'development') {
    issues.push(source.issue(['identity'], 'missing required key \'masterKey\' in production: base64 of 32 random bytes, e.g. masterKey: ${file:/run/secrets/rampart-master-key} (only development mode generates one)'));
  }
  if (identity.masterKey !== undefined && Buffer.from(identity.masterKey.trim(), 'base64').length < 32) {
    issues.push(source.issue(['identity', 'masterKey'], 'expected base64 of at least 32 random bytes (openssl rand -base64 32)'));
  }
  const ttl = parseDuration(identity.tokens.accessTtl);
  if (ttl < 60_000 || ttl > 3_600_000) issues.push(source.issue(['identity', 'tokens', 'accessTtl'], 'expected a duration between 1m and 1h'));
  const grace = parseDuration(identity.tokens.reuseGrace);
  if (grace > 30_000) issues.push(source.issue(['identity', 'tokens', 'reuseGrace'], 'expected at most 30s (a longer window lets a stolen token ride along)'));
  if (parseDuration(identity.tokens.refreshIdleTtl) > parseDuration(identity.tokens.refreshAbsoluteTtl)) {
    issues.push(source.issue(['identity', 'tokens', 'refreshIdleTtl'], 'expected at most refreshAbsoluteTtl'));
  }
  if (parseDuration(identity.keys.rotateEvery) < 2 * parseDuration(identity.keys.jwksMaxAge)) {
    issues.push(source.issue(['identity', 'keys', 'rotateEvery'], 'expected at least twice keys.jwksMaxAge (the next key must be published one JWKS cache lifetime before it signs)'));
  }
  // A node signs with a retired key until its next refresh; retired keys stay published 5 minutes past the access TTL.
  if (parseDuration(identity.keys.refresh) > 60_000 || parseDuration(identity.keys.refresh) < 1000) {
    issues.push(source.issue(['identity', 'keys', 'refresh'], 'expected a duration between 1s and 1m'));
  }
  if (identity.lockout.threshold >= identity.lockout.permanentAfter) {
    issues.push(source.issue(['identity', 'lockout', 'threshold'], 'expected fewer failures than lockout.permanentAfter (otherwise the first lock is permanent)'));
  }
  if (parseDuration(identity.lockout.baseDelay) > parseDuration(identity.lockout.maxDelay)) {
    issues.push(source.issue(['identity', 'lockout', 'baseDelay'], 'expected at most lockout.maxDelay'));
  }
  if (identity.clients.tokenTtl !== undefined) {
    const clientTtl = parseDuration(identity.clients.tokenTtl);
    if (clientTtl < 60_000 || clientTtl > 3_600_000) issues.push(source.issue(['identity', 'clients', 'tokenTtl'], 'expected a duration between 1m and 1h'));
  }
  if (parseDuration(identity.clients.secretOverlap) > 30 * 86_400_000) issues.push(source.issue(['identity', 'clients', 'secretOverlap'], 'expected at most 30d'));
  const keys = identity.apiKeys;
  const keyCache = parseDuration(keys.cacheTtl);
  if (keyCache < 1000 || keyCache > 300_000) issues.push(source.issue(['identity', 'apiKeys', 'cacheTtl'], 'expected a duration between 1s and 5m'));
  if (parseDuration(keys.defaultTtl) < 60_000) issues.push(source.issue(['identity', 'apiKeys', 'defaultTtl'], 'expected at least 1m'));
  if (parseDuration(keys.defaultTtl) > parseDuration(keys.maxTtl)) issues.push(source.issue(['identity', 'apiKeys', 'defaultTtl'], 'expected at most apiKeys.maxTtl'));
  if (identity.mfa.lockout.threshold >= identity.mfa.lockout.permanentAfter) {
    issues.push(source.issue(['identity', 'mfa', 'lockout', 'threshold'], 'expected fewer wrong codes than mfa.lockout.permanentAfter (otherwise the first lock is permanent)'));
  }
  if (parseDuration(identity.mfa.lockout.baseDelay) > parseDuration(identity.mfa.lockout.maxDelay)) {
    issues.push(source.issue(['identity', 'mfa', 'lockout', 'baseDelay'], 'expected at most mfa.lockout.maxDelay'));
  }
}
