import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfigObject, loadConfigText } from './load.js';
import { ConfigError, formatIssue } from './errors.js';
import { buildPipeline } from '../gateway/pipeline.js';
import { createEvents } from '../observability/events.js';
import { createLogger } from '../observability/logger.js';
import { describePipeline } from '../cli/describe.js';

const load = (text: string, env: NodeJS.ProcessEnv = {}, dir = '/tmp') => loadConfigText(text, 'rampart.yaml', dir, env);

function issuesOf(text: string, env: NodeJS.ProcessEnv = {}, dir = '/tmp'): string[] {
  try {
    load(text, env, dir);
  } catch (error) {
    if (error instanceof ConfigError) return error.issues.map(formatIssue);
    throw error;
  }
  throw new Error('expected the config to be rejected');
}

const minimal = `
upstreams:
  app:
    targets:
      - url: http://127.0.0.1:3001
routes:
  - name: api
    match:
      path: /api/*
    upstream: app
    public: true
`;

describe('loading a config', () => {
  it('fills every default and freezes the result', () => {
    const { config } = load(minimal);
    expect(config.mode).toBe('production');
    expect(config.server.listen).toEqual({ host: '0.0.0.0', port: 8080 });
    expect(config.admin.listen).toEqual({ host: '127.0.0.1', port: 9901 });
    expect(config.upstreams.app!.timeouts).toEqual({ connect: '5s', headers: '30s', body: '30s' });
    expect(config.routes[0]!.match.methods).toContain('GET');
    expect(config.routes[0]!.match.methods).not.toContain('TRACE');
    expect(Object.isFrozen(config.upstreams.app!.targets[0])).toBe(true);
    expect(() => {
      (config.server.listen as { port: number }).port = 1;
    }).toThrow(TypeError);
  });

  it('reports a nested typo, a wrong type and an unknown policy with file:line:column', () => {
    const text = `upstreams:
  app:
    targets:
      - url: http://127.0.0.1:3001
    timeouts:
      conect: 2s
server:
  listen:
    port: eighty
defaults:
  throttle: {}
routes:
  - name: api
    match: { path: /api/* }
    upstream: app
`;
    expect(issuesOf(text)).toEqual([
      "rampart.yaml:6:7: upstreams.app.timeouts.conect: unknown key 'conect' (did you mean 'connect'?)",
      "rampart.yaml:9:11: server.listen.port: expected an integer, got 'eighty'",
      "rampart.yaml:11:3: defaults.throttle: unknown policy 'throttle'; known policies: request-id, concurrency, limits, ip-filter, cors, ip-rate-limit, jwt, api-key, introspection, rate-limit, authorize, openapi, consumer-token, inspect, versioning, headers, upstream-errors, detect, redact, access-log",
    ]);
  });

  it('explains enums, patterns, missing keys and references', () => {
    const text = `mode: prod
upstreams:
  app:
    targets: []
    timeouts: { connect: 5 seconds }
routes:
  - name: Bad Name
    match: { path: api, methods: [GET, FETCH] }
    upstream: ap
  - name: two
    upstream: app
`;
    const issues = issuesOf(text);
    expect(issues).toEqual([
      `rampart.yaml:1:7: mode: expected one of "production", "development", got 'prod' (did you mean 'production'?)`,
      'rampart.yaml:4:14: upstreams.app.targets: expected at least 1 item',
      "rampart.yaml:5:26: upstreams.app.timeouts.connect: expected a duration such as 500ms, 30s, 5m, 1h or 7d, got '5 seconds'",
      `rampart.yaml:7:11: routes[0].name: expected a name of lowercase letters, digits, ".", "_" or "-" (at most 64 characters), got 'Bad Name'`,
      `rampart.yaml:8:20: routes[0].match.path: expected a path starting with "/", got 'api'`,
      `rampart.yaml:8:40: routes[0].match.methods[1]: expected one of "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "QUERY", got 'FETCH' (did you mean 'PATCH'?)`,
      "rampart.yaml:10:5: routes[1]: missing required key 'match'",
    ]);
  });

  it('checks references between sections once the shape is right', () => {
    const text = `upstreams:
  app:
    targets: [{ url: "http://127.0.0.1:1" }]
routes:
  - name: a
    match: { path: /a/:id/:id }
    upstream: ap
  - name: a
    match: { path: "/b/x*y" }
    upstream: app
    stripPrefix: /c
`;
    expect(issuesOf(text)).toEqual([
      "rampart.yaml:6:20: routes[0].match.path: parameter ':id' appears twice",
      "rampart.yaml:7:15: routes[0].upstream: unknown upstream 'ap' (did you mean 'app'?)",
      'rampart.yaml:8:11: routes[1].name: duplicate route name \'a\' (also routes[0])',
      "rampart.yaml:9:20: routes[1].match.path: '*' may only end the path pattern, got '/b/x*y'",
      "rampart.yaml:11:18: routes[1].stripPrefix: '/c' is not a literal prefix of the path pattern '/b/x*y'",
    ]);
  });

  it('reports YAML syntax errors and duplicate keys with their position', () => {
    expect(issuesOf('routes:\n  - name: a\n    name: b\n')[0]).toMatch(/^rampart\.yaml:3:5: Map keys must be unique/);
    expect(issuesOf('server: {listen: [}\n')[0]).toMatch(/^rampart\.yaml:1:\d+: /);
    expect(issuesOf('- a\n- b\n')).toEqual(['rampart.yaml:1:1: expected a mapping at the top level']);
  });

  it('refuses __proto__ and other hostile keys without polluting anything', () => {
    const text = `defaults:
  __proto__: { polluted: true }
routes: []
`;
    expect(issuesOf(text)).toEqual(["rampart.yaml:2:3: defaults.__proto__: unknown policy '__proto__'; known policies: request-id, concurrency, limits, ip-filter, cors, ip-rate-limit, jwt, api-key, introspection, rate-limit, authorize, openapi, consumer-token, inspect, versioning, headers, upstream-errors, detect, redact, access-log"]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(issuesOf('server:\n  constructor: 1\n')[0]).toContain("unknown key 'constructor'");
  });
});

describe('interpolation', () => {
  it('resolves ${NAME}, ${NAME:-default}, ${file:PATH} and $${ escapes; plain scalars take their type', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rampart-cfg-'));
    writeFileSync(join(dir, 'secret.txt'), 's3cret\n');
    const { config } = load(
      `server:
  listen:
    port: \${PORT}
    host: "\${HOST:-127.0.0.1}"
dataDir: "\${file:secret.txt}-$\${LITERAL}"
upstreams:
  app:
    targets: [{ url: "http://\${UP_HOST}:\${UP_PORT:-3001}" }]
    host: "\${EMPTY:-fallback.example}"
routes: []
`,
      { PORT: '9090', UP_HOST: 'backend', EMPTY: '' },
      dir,
    );
    expect(config.server.listen.port).toBe(9090);
    expect(config.server.listen.host).toBe('127.0.0.1');
    expect(config.dataDir).toBe('s3cret-${LITERAL}');
    expect(config.upstreams.app!.targets[0]!.url).toBe('http://backend:3001');
    expect(config.upstreams.app!.host).toBe('fallback.example');
  });

  it('keeps a quoted reference a string, so the schema says what is wrong', () => {
    expect(issuesOf('server:\n  listen:\n    port: "${PORT}"\n', { PORT: '80' })).toEqual([
      "rampart.yaml:3:11: server.listen.port: expected an integer, got '80'",
    ]);
  });

  it('reports a missing variable, a bad reference and a missing secret file where they are', () => {
    expect(issuesOf('dataDir: ${NOPE}\nserver:\n  listen:\n    host: ${bad name}\n    port: ${NO_PORT}\nlog:\n  destination: ${file:missing.txt}\nroutes: [{ name: "${NO_NAME}" }]\n')).toEqual([
      'rampart.yaml:1:10: dataDir: environment variable NOPE is not set (use ${NOPE:-default} for a default)',
      "rampart.yaml:4:11: server.listen.host: invalid reference '${bad name}': expected ${NAME}, ${NAME:-default} or ${file:PATH}",
      // Reported once: not again as "expected an integer".
      'rampart.yaml:5:11: server.listen.port: environment variable NO_PORT is not set (use ${NO_PORT:-default} for a default)',
      "rampart.yaml:7:16: log.destination: cannot read secret file 'missing.txt': ENOENT",
      'rampart.yaml:8:18: routes[0].name: environment variable NO_NAME is not set (use ${NO_NAME:-default} for a default)',
      "rampart.yaml:8:10: routes[0]: missing required key 'match'",
    ].sort((a, b) => a.localeCompare(b, 'en', { numeric: true })));
  });

  it('never interpolates keys', () => {
    expect(issuesOf('${KEY}: 1\n', { KEY: 'mode' })[0]).toContain("unknown key '${KEY}'");
  });
});

describe('policies in the config', () => {
  const logger = createLogger({ level: 'silent', destination: 'stderr' });
  const deps = { logger, events: createEvents(logger) };

  it('applies defaults, merges route overrides and disables with false, in a deterministic order', async () => {
    const loaded = load(`${minimal}
  - name: quiet
    match: { path: /quiet }
    upstream: app
    public: true
    policies:
      access-log: false
      request-id: { echo: false }
defaults:
  request-id: { header: x-correlation-id }
`);
    const pipeline = buildPipeline(loaded, deps);
    const [api, quiet] = pipeline.routes;
    expect(api!.policies.map((p) => p.name)).toEqual(['request-id', 'limits', 'cors', 'ip-rate-limit', 'inspect', 'upstream-errors', 'detect', 'redact', 'headers', 'access-log']);
    expect(quiet!.policies.map((p) => p.name)).toEqual(['request-id', 'limits', 'cors', 'ip-rate-limit', 'inspect', 'upstream-errors', 'detect', 'redact', 'headers']);
    // echo: false merged over the default header → no request-id response hook (headers' and ip-rate-limit's remain).
    expect(quiet!.responseHooks).toHaveLength(3);
    expect(api!.responseHooks).toHaveLength(4);
    expect(describePipeline(pipeline)).toContain(
      '    policies: request-id [transport 1000] → limits [transport 950] → cors [cors] → ip-rate-limit [rate-limit-pre] → inspect [validate 400] → upstream-errors [respond 700] → detect [respond 600] → redact [respond 500] → headers [respond] → access-log [observe]',
    );
    await pipeline.close();
  });

  it('turns a default-on policy off everywhere with `defaults.<name>: false`', async () => {
    const pipeline = buildPipeline(load(`${minimal}defaults:\n  access-log: false\n`), deps);
    expect(pipeline.routes[0]!.policies.map((p) => p.name)).toEqual(['request-id', 'limits', 'cors', 'ip-rate-limit', 'inspect', 'upstream-errors', 'detect', 'redact', 'headers']);
    expect(pipeline.fallback.policies.map((p) => p.name)).toEqual(['request-id', 'limits', 'cors', 'ip-rate-limit', 'inspect', 'headers']);
    await pipeline.close();
  });

  it('validates policy options against the policy schema', () => {
    expect(issuesOf(`${minimal}    policies:\n      request-id: { header: "X Bad", echo: yes }\n`)).toEqual([
      "rampart.yaml:13:29: routes[0].policies.request-id.header: expected a lowercase header name, got 'X Bad'",
      "rampart.yaml:13:44: routes[0].policies.request-id.echo: expected true or false, got 'yes'",
    ]);
  });

  it('refuses two routes claiming the same method, path and host, pointing at the second', () => {
    const loaded = load(`${minimal}  - name: again
    match: { path: "/api/*", methods: [POST] }
    upstream: app
    public: true
`);
    try {
      buildPipeline(loaded, deps);
      expect.unreachable();
    } catch (error) {
      expect((error as ConfigError).issues.map(formatIssue)).toEqual([
        "rampart.yaml:13:12: routes[1].match: POST /api/* is already taken by route 'api'",
      ]);
    }
  });

  it('validates an inline config for the library without positions', () => {
    expect(() => loadConfigObject({ routes: [{ name: 'a', match: { path: '/a' }, upstream: 'x' }] })).toThrow(
      /<inline>: routes\[0\]\.upstream: routes of the Fastify plugin are served by the host app/,
    );
  });
});

describe('regressions from the security review', () => {
  it('zero-timeouts-disable-silently: a 0 timeout is refused, not taken as "no timeout"', () => {
    const text = `server:
  timeouts:
    headers: 0s
upstreams:
  app:
    targets: [{ url: "http://127.0.0.1:1" }]
    timeouts: { headers: 0ms }
routes: []
`;
    expect(issuesOf(text)).toEqual([
      'rampart.yaml:3:14: server.timeouts.headers: expected a duration above 0 (0 would disable this timeout)',
      'rampart.yaml:7:26: upstreams.app.timeouts.headers: expected a duration above 0 (0 would disable this timeout)',
    ]);
  });

  it('strip-prefix-mid-segment: stripPrefix must end at a segment boundary of the pattern', () => {
    const text = `upstreams:
  app:
    targets: [{ url: "http://127.0.0.1:1" }]
routes:
  - name: a
    match: { path: "/api*" }
    upstream: app
    public: true
    stripPrefix: /api
`;
    expect(issuesOf(text)).toEqual(["rampart.yaml:9:18: routes[0].stripPrefix: '/api' is not a literal prefix of the path pattern '/api*'"]);
  });

  it('yaml-alias-bomb: an exponential alias document is a config error, not a crash', () => {
    const levels = ['a: &a ["x","x","x","x","x","x","x","x","x"]'];
    for (let i = 1; i < 12; i++) levels.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(9).fill(`*${String.fromCharCode(96 + i)}`).join(',')}]`);
    const issues = issuesOf(levels.join('\n') + '\n');
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatch(/^rampart\.yaml:1:1: the document cannot be expanded: /);
  });
});

describe('transport settings', () => {
  const routes = `upstreams:
  app:
    targets: [{ url: "http://127.0.0.1:1" }]
routes:
  - name: open
    match: { path: /health }
    upstream: app
    public: true
    allowInsecure: true
  - name: api
    match: { path: /api }
    upstream: app
    public: true
`;

  it('warns, with positions, about every route served over plain HTTP and about a config that cannot serve HTTPS at all', () => {
    const warnings = load(routes).warnings.map(formatIssue);
    expect(warnings).toEqual([
      "rampart.yaml:9:20: routes[0].allowInsecure: route 'open' is served over plain HTTP: anything sent to it can be read and changed on the way",
      expect.stringMatching(/^rampart\.yaml:1:1: server: no HTTPS: server\.tls is not set and no trusted proxy/),
    ]);
    // Behind a trusted TLS-terminating proxy, only the allowInsecure route is worth a warning.
    expect(load(`server:\n  trustedProxies: [10.0.0.0/8]\n${routes}`).warnings.map(formatIssue)).toHaveLength(1);
  });

  it('union-errors: tls reports the branch the value is shaped like, not every branch', () => {
    expect(issuesOf('server:\n  tls: autox\n')).toEqual(["rampart.yaml:2:8: server.tls: expected 'auto' or a mapping with cert and key, got 'autox'"]);
    expect(issuesOf('server:\n  tls: { cert: a.pem }\n')).toEqual(["rampart.yaml:2:8: server.tls: missing required key 'key'"]);
    expect(issuesOf('server:\n  tls: { cert: a.pem, key: a.key, minVersion: TLSv1.1 }\n')).toEqual([
      "rampart.yaml:2:47: server.tls.minVersion: expected one of \"TLSv1.2\", \"TLSv1.3\", got 'TLSv1.1' (did you mean 'TLSv1.2'?)",
    ]);
  });

  it('a plain-HTTP listener needs server.tls and its own port', () => {
    expect(issuesOf('server:\n  listen: { port: 8443 }\n  http:\n    listen: { port: 8443 }\n')).toEqual([
      'rampart.yaml:4:5: server.http: a plain-HTTP listener next to the gateway listener needs server.tls (the gateway listener is plain HTTP already)',
      "rampart.yaml:4:21: server.http.listen.port: port 8443 is already the gateway listener's port",
    ]);
  });
});

describe('identity section', () => {
  it('refuses production without a master key, an issuer with a path, and settings that contradict each other, each at its position', () => {
    expect(
      issuesOf(`identity:
  issuer: https://api.example.com/auth
${minimal}`),
    ).toEqual(["rampart.yaml:2:11: identity.issuer: expected an https:// origin without a path, e.g. https://api.example.com, got 'https://api.example.com/auth'"]);
    expect(
      issuesOf(`identity:
  issuer: https://api.example.com
  lockout:
    threshold: 20
    permanentAfter: 10
  tokens:
    accessTtl: 2h
${minimal}`),
    ).toEqual([
      "rampart.yaml:2:3: identity: missing required key 'masterKey' in production: base64 of 32 random bytes, e.g. masterKey: ${file:/run/secrets/rampart-master-key} (only development mode generates one)",
      'rampart.yaml:4:16: identity.lockout.threshold: expected fewer failures than lockout.permanentAfter (otherwise the first lock is permanent)',
      'rampart.yaml:7:16: identity.tokens.accessTtl: expected a duration between 1m and 1h',
    ]);
  });

  it('warns when the identity service shares PostgreSQL without Redis (revocations would be per node)', () => {
    const loaded = load(`mode: development
storage:
  url: postgres://db/rampart
identity:
  issuer: https://api.example.com
${minimal}`);
    expect(loaded.warnings.map(formatIssue)).toContainEqual(expect.stringContaining('rampart.yaml:3:8: storage.url: the identity service shares PostgreSQL but no redis is configured'));
  });
});
