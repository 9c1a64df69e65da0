import { describe, expect, it } from 'vitest';
import { loadConfigText } from '../../config/load.js';
import { ConfigError, formatIssue } from '../../config/errors.js';
import { buildPipeline } from '../../gateway/pipeline.js';
import { createEvents } from '../../observability/events.js';
import { createLogger } from '../../observability/logger.js';
import { describePipeline } from '../../cli/describe.js';

const load = (text: string) => loadConfigText(text, 'rampart.yaml', '/tmp', {});
const logger = createLogger({ level: 'silent', destination: 'stderr' });
const deps = { logger, events: createEvents(logger) };

/** Every problem of a config, as `rampart validate` prints them; the pipeline's (route conflicts) too. */
function issuesOf(text: string): string[] {
  try {
    const pipeline = buildPipeline(load(text), deps);
    void pipeline.close();
  } catch (error) {
    if (error instanceof ConfigError) return error.issues.map(formatIssue);
    throw error;
  }
  throw new Error('expected the config to be rejected');
}

const UPSTREAM = `upstreams:
  app:
    targets:
      - url: http://127.0.0.1:3001
`;

describe('versions: config', () => {
  it('accepts the smallest versioned config and fills the defaults', () => {
    const loaded = load(`${UPSTREAM}versions:
  v1: {}
routes:
  - name: a
    version: v1
    match: { path: /a }
    upstream: app
    public: true
`);
    expect(loaded.config.versions).toEqual({ v1: { default: false } });
    expect(loaded.config.routes[0]!.version).toBe('v1');
    expect(load(`${UPSTREAM}routes: []\n`).config.versions).toEqual({});
  });

  it('reports wrong dates, an unknown successor, itself, a cycle and bad selection with file:line:column', () => {
    const text = `${UPSTREAM}versions:
  v1:
    deprecated: 2027-01-01T00:00:00Z
    sunset: 2026-06-01T00:00:00Z
    successor: v9
  v2:
    deprecated: 2026-02-30T00:00:00Z
    sunset: tomorrow
    successor: v2
  v3:
    successor: v4
    link: https://docs.example.com/v3
  v4:
    successor: v3
  h1:
    prefix: /api/h1
    select: { header: api-version, mediaType: version, value: '1' }
  h2:
    select: { header: accept, value: '2' }
    default: true
  h3:
    select: { header: api-version, value: '3' }
    default: true
routes: []
`;
    expect(issuesOf(text)).toEqual(["rampart.yaml:12:13: versions.v2.sunset: expected an RFC 3339 date-time with an offset, e.g. 2027-01-31T00:00:00Z, got 'tomorrow'"]);
    // Once the shapes are right, the references are checked.
    const fixed = text.replace('sunset: tomorrow', 'sunset: 2027-01-01T00:00:00Z');
    expect(issuesOf(fixed)).toEqual([
      "rampart.yaml:8:13: versions.v1.sunset: expected a sunset at or after the deprecation (2027-01-01T00:00:00Z)",
      "rampart.yaml:9:16: versions.v1.successor: unknown version 'v9' (did you mean 'v1'?)",
      "rampart.yaml:11:17: versions.v2.deprecated: '2026-02-30T00:00:00Z' is not a real date and time",
      'rampart.yaml:13:16: versions.v2.successor: a version cannot be its own successor',
      'rampart.yaml:15:16: versions.v3.successor: successors go round in a circle: v3 → v4 → v3',
      "rampart.yaml:16:11: versions.v3.link: 'link' is sent with the Deprecation header: set 'deprecated' too",
      'rampart.yaml:18:16: versions.v4.successor: successors go round in a circle: v4 → v3 → v4',
      "rampart.yaml:21:13: versions.h1.select: expected exactly one of 'header', 'mediaType' and 'query'",
      "rampart.yaml:21:13: versions.h1.select: a version is chosen by its path 'prefix' or by 'select', not both",
      "rampart.yaml:23:23: versions.h2.select.header: to select by Accept, use 'mediaType: <parameter>' (Accept: application/json; version=2)",
      "rampart.yaml:27:14: versions.h3.default: only one version can be the default ('h2' is already)",
    ]);
  });

  it('reports a route naming an unknown version, a path outside its prefix, and a bad successorPath', () => {
    const text = `${UPSTREAM}versions:
  v1: { prefix: /api/v1, successor: v2 }
  v2: { prefix: /api/v2 }
  solo: {}
routes:
  - name: a
    version: v3
    match: { path: /api/v1/a }
    upstream: app
    public: true
  - name: b
    version: v1
    match: { path: /api/v1x/b }
    upstream: app
    public: true
  - name: c
    version: v1
    successorPath: /api/v2/c/:nope
    match: { path: /api/v1/c/:id }
    upstream: app
    public: true
  - name: d
    version: solo
    successorPath: /elsewhere
    match: { path: /d }
    upstream: app
    public: true
  - name: f
    version: v1
    successorPath: /api/v2/f/*
    match: { path: /api/v1/f/:id }
    upstream: app
    public: true
  - name: e
    successorPath: /elsewhere
    match: { path: /e }
    upstream: app
    public: true
`;
    expect(issuesOf(text)).toEqual([
      "rampart.yaml:11:14: routes[0].version: unknown version 'v3' (did you mean 'v1'?)",
      "rampart.yaml:17:20: routes[1].match.path: route 'b' is in version 'v1', whose paths start with '/api/v1', but its path is '/api/v1x/b'",
      "rampart.yaml:22:20: routes[2].successorPath: parameter ':nope' is not in the path pattern '/api/v1/c/:id'",
      "rampart.yaml:28:20: routes[3].successorPath: version 'solo' has no 'successor'",
      "rampart.yaml:34:20: routes[4].successorPath: '*' is used but the path pattern '/api/v1/f/:id' has no wildcard",
      "rampart.yaml:39:20: routes[5].successorPath: 'successorPath' needs a 'version' with a 'successor'",
    ]);
  });

  it('lets routes of versions chosen the same way share a path, and reports every other sharing at the route', () => {
    const base = `${UPSTREAM}versions:
  h1: { select: { header: api-version, value: '1' } }
  h2: { select: { header: api-version, value: '2' }, default: true }
  h2b: { select: { header: api-version, value: '2' } }
  m3: { select: { mediaType: version, value: '3' } }
  plain: {}
routes:
  - name: one
    version: h1
    match: { path: /items/:id, methods: [GET] }
    upstream: app
    public: true
  - name: two
    version: h2
    match: { path: /items/:id, methods: [GET] }
    upstream: app
    public: true
`;
    const pipeline = buildPipeline(load(base), deps);
    expect(pipeline.router.find('GET', '/items/7', undefined, { 'api-version': '1' })!.route.name).toBe('one');
    expect(pipeline.router.find('GET', '/items/7', undefined, {})!.route.name).toBe('two');
    // Without headers (a preflight): the default version's route.
    expect(pipeline.router.find('GET', '/items/7', undefined)!.route.name).toBe('two');
    const summary = describePipeline(pipeline);
    expect(summary).toContain('    version: h1 (header api-version: 1)');
    expect(summary).toContain('    version: h2 (header api-version: 2, default)');
    void pipeline.close();
    const extra = (version: string | undefined, path = '/items/:id') => `${base}  - name: three
${version === undefined ? '' : `    version: ${version}\n`}    match: { path: '${path}', methods: [GET] }
    upstream: app
    public: true
`;
    expect(issuesOf(extra('h2b'))).toEqual(["rampart.yaml:24:12: routes[2].match: GET /items/:id for the api-version header '2' is already taken by route 'two'"]);
    expect(issuesOf(extra('m3'))).toEqual([
      "rampart.yaml:24:12: routes[2].match: GET /items/:id is shared with route 'one', whose version is chosen by the api-version header, not by the Accept parameter 'version': versions sharing a path must be chosen the same way",
    ]);
    expect(issuesOf(extra('plain'))).toEqual([
      "rampart.yaml:24:12: routes[2].match: GET /items/:id is already taken by route 'one' (routes share a path only when all of them belong to versions chosen by select)",
    ]);
    expect(issuesOf(extra(undefined))).toEqual([
      "rampart.yaml:23:12: routes[2].match: GET /items/:id is already taken by route 'one' (routes share a path only when all of them belong to versions chosen by select)",
    ]);
  });

  it('shows each route\'s version in `rampart validate`', () => {
    const pipeline = buildPipeline(
      load(`${UPSTREAM}versions:
  v1: { prefix: /v1, deprecated: 2027-01-01T00:00:00Z, sunset: 2027-07-01T00:00:00Z, successor: v2 }
  v2: { prefix: /v2 }
routes:
  - { name: a, version: v1, match: { path: /v1/a }, upstream: app, public: true }
  - { name: b, version: v2, match: { path: /v2/a }, upstream: app, public: true }
`),
      deps,
    );
    const summary = describePipeline(pipeline);
    expect(summary).toContain('    version: v1 · deprecated · sunset 2027-07-01T00:00:00.000Z · successor v2');
    expect(summary).toContain('    version: v2');
    // Only the routes of a version with something to do run (and list) the policy.
    const [a, b] = pipeline.routes;
    expect(a!.policies.map((p) => p.name)).toContain('versioning');
    expect(b!.policies.map((p) => p.name)).not.toContain('versioning');
    expect(pipeline.fallback.policies.map((p) => p.name)).not.toContain('versioning');
    void pipeline.close();
  });

  it('checks the built-in users API\'s dates too', () => {
    const text = `mode: development
identity:
  issuer: https://localhost
  usersApi:
    v1:
      deprecated: 2027-01-01T00:00:00Z
      sunset: 2026-01-01T00:00:00Z
routes: []
`;
    expect(issuesOf(text)).toEqual(['rampart.yaml:7:15: identity.usersApi.v1.sunset: expected a sunset at or after the deprecation (2027-01-01T00:00:00Z)']);
  });
});
