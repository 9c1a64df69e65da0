import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { ConfigError } from '../../src/config/errors.js';
import { loadConfigObject, loadConfigText, type LoadedConfig } from '../../src/config/load.js';
import { buildPipeline } from '../../src/gateway/pipeline.js';
import { createEvents } from '../../src/observability/events.js';
import { createLogger } from '../../src/observability/logger.js';
import { assertDeepFrozen, fuzz, FUZZ_TIMEOUT, LONG_RUN } from './fuzz.js';

/**
 * The config loader (src/config/load.ts) on any text: the answer is a LoadedConfig whose config
 * is frozen all the way down, or a ConfigError whose every issue points into the file (file, line
 * and column ≥ 0, a message). Nothing else is ever thrown: `rampart validate` and a reload must
 * report a bad file, never crash on one. Texts are YAML-ish token soup and valid configs with
 * random mutations of keys, values and types; loaded configs are also compiled (buildPipeline),
 * which must give a pipeline or a ConfigError just the same.
 *
 * Reproduce a failure: FUZZ_SEED=<seed> FUZZ_PATH=<path> npx vitest run test/fuzz/config.fuzz.test.ts -t '<name>'
 */

const FILE = 'fuzz.yaml';
const dir = mkdtempSync(join(tmpdir(), 'rampart-fuzz-config-'));
writeFileSync(join(dir, 'secret'), 'a-secret-of-at-least-thirty-two-characters\n');
writeFileSync(join(dir, 'empty'), '');
mkdirSync(join(dir, 'folder'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ENV: NodeJS.ProcessEnv = { PORT: '8080', HOST: '127.0.0.1', EMPTY: '', TEXT: 'a: b\n- c', SECRET: 'x'.repeat(40), NUM: '1e400' };
const logger = createLogger({ level: 'silent', destination: 'stderr' });
const deps = { logger, events: createEvents(logger) };

/** What the loader may do with a text: load it, or refuse it with located issues. */
function load(text: string): LoadedConfig | ConfigError {
  try {
    return loadConfigText(text, FILE, dir, ENV, 'gateway');
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw new Error(`loadConfigText threw ${String(error)} (not a ConfigError)`, { cause: error });
  }
}

function assertLocated(error: ConfigError, file = FILE): void {
  expect(error.issues.length).toBeGreaterThan(0);
  for (const issue of error.issues) {
    expect(issue.file).toBe(file);
    expect(Number.isInteger(issue.line) && issue.line >= 0, `line of ${JSON.stringify(issue)}`).toBe(true);
    expect(Number.isInteger(issue.column) && issue.column >= 0, `column of ${JSON.stringify(issue)}`).toBe(true);
    expect(typeof issue.message === 'string' && issue.message.trim() !== '', `message of ${JSON.stringify(issue)}`).toBe(true);
    expect(typeof issue.path).toBe('string');
  }
}

/** A loaded config is frozen all the way down, and compiles to a pipeline or a located ConfigError. */
async function assertLoaded(loaded: LoadedConfig): Promise<void> {
  assertDeepFrozen(loaded.config);
  expect(Object.isFrozen(loaded)).toBe(true);
  expect(Object.isFrozen(loaded.warnings)).toBe(true);
  let pipeline;
  try {
    pipeline = buildPipeline(loaded, deps);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw new Error(`buildPipeline threw ${String(error)} (not a ConfigError)`, { cause: error });
    assertLocated(error);
    return;
  }
  await pipeline.close();
}

async function check(text: string): Promise<void> {
  const result = load(text);
  if (result instanceof ConfigError) assertLocated(result);
  else await assertLoaded(result);
}

// ---------------------------------------------------------------------------------------------
// Unstructured: token soup that looks like YAML, and raw characters.

const yamlToken = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('\n', '\n  ', '\n    ', '  ', '- ', ': ', ':', ' ', ',', '{', '}', '[', ']', '? ', '|', '|-', '>', '>+', '#', '# c\n', '"', "'", '\\', '&a ', '*a', '<<: *a', '&b ', '*b', '!!str ', '!!int ', '!!map ', '!!binary ', '!!set ', '!custom ', '!<tag:yaml.org,2002:str> ', '---\n', '...\n', '%YAML 1.2\n---\n', '%TAG ! tag:x,2000:\n', '\t', '\r\n', '\r', '\uFEFF', '\0', '\u2028', '\u0085') },
  { weight: 4, arbitrary: fc.constantFrom('routes', 'upstreams', 'defaults', 'versions', 'server', 'admin', 'identity', 'log', 'alerts', 'storage', 'redis', 'mode', 'dataDir', 'name', 'match', 'path', 'methods', 'host', 'upstream', 'targets', 'url', 'policies', 'public', 'allowInsecure', 'stripPrefix', 'rewrite', 'version', 'jwt', 'limits', 'authorize', 'allow', 'cors', 'origins', 'listen', 'port', 'tls', 'timeouts', 'http', '__proto__', 'constructor', 'prototype') },
  { weight: 4, arbitrary: fc.constantFrom('true', 'false', 'null', '~', '0', '-1', '65536', '1e400', '-.inf', '.nan', '0x1F', '0o17', '9007199254740993', '1_000', '2001-12-14t21:59:43.10-05:00', '/api/*', '/items/:id', 'http://127.0.0.1:1', 'GET', 'POST', '1MiB', '10s', '0s', 'development', 'production', 'auto', '""', "''", 'é', '😀', '\uD800') },
  { weight: 3, arbitrary: fc.constantFrom('${PORT}', '${HOST}', '${EMPTY}', '${EMPTY:-d}', '${UNSET}', '${UNSET:-1}', '${TEXT}', '${SECRET}', '${NUM}', '${file:secret}', '${file:empty}', '${file:folder}', '${file:missing}', '${file:}', '${', '${}', '${1X}', '$${PORT}', '${PORT', '}') },
  { weight: 2, arbitrary: fc.string({ maxLength: 6 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 4 }) },
);
const yamlSoup = fc.array(yamlToken, { maxLength: 80 }).map((tokens) => tokens.join(''));

/** Anchors that expand to many nodes (the billion-laughs document, at random sizes). */
const aliasBomb = fc.record({ levels: fc.integer({ min: 1, max: 12 }), width: fc.integer({ min: 1, max: 12 }), top: fc.constantFrom('routes', 'defaults', 'x') }).map(({ levels, width, top }) => {
  const lines = ['a0: &a0 [x]'];
  for (let i = 1; i <= levels; i++) lines.push(`a${i}: &a${i} [${Array.from({ length: width }, () => `*a${i - 1}`).join(', ')}]`);
  lines.push(`${top}: *a${levels}`);
  return lines.join('\n');
});

// ---------------------------------------------------------------------------------------------
// Structured: valid configs, then mutated.

const json = fc.jsonValue({ maxDepth: 3 });
const oddValue = fc.oneof(
  fc.constantFrom<unknown>(null, true, false, 0, -1, 1.5, 65536, 2 ** 53 + 2, -0, '', ' ', '0', 'GET', '/x', '/api/*', '${PORT}', '${UNSET}', '${file:secret}', '1MiB', '0s', '-1s', '10', 'x'.repeat(3000), [], {}, [null], { '': 1 }),
  fc.string({ maxLength: 20 }),
  fc.integer(),
  fc.double(),
  json,
);
const keyName = fc.oneof(
  fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', '', ' ', 'name', 'Name', 'nmae', 'path', 'methods', 'policies', 'jwt', 'jtw', 'limits', 'authorize', 'x-extra', '0', 'hasOwnProperty'),
  fc.string({ maxLength: 12 }),
);

/** Mostly one of `valid`, now and then one of `invalid`: mutated configs must still often load. */
function pick<T>(valid: readonly T[], invalid: readonly T[] = []): fc.Arbitrary<T> {
  const good = fc.constantFrom(...valid);
  return invalid.length === 0 ? good : fc.oneof({ weight: 40, arbitrary: good }, { weight: 1, arbitrary: fc.constantFrom(...invalid) });
}

const jwtBlock = fc.record({
  algorithms: pick([['HS256'], ['HS256', 'HS512']], [['RS256'], ['none']]),
  secret: pick(['${file:secret}', '${SECRET}', 'x'.repeat(32)], ['short', '${file:missing}']),
  issuer: pick(['https://issuer.test', ['https://a.test', 'https://b.test']], [[]]),
  audience: pick(['api', ['api', 'other']]),
  clockSkew: pick(['30s', '5m'], ['6m', 'soon']),
});
const celRule = pick(
  ['request.params.id == consumer.id', "'admin' in consumer.roles", 'request.method == "GET"', 'size(request.path) < 100', 'request.query.x == "1"', 'request.headers["x"] == "y"', 'consumer.claims.sub.startsWith("u")'],
  ['unknown == 1', '1 +', 'response.body.owner == consumer.id', ''],
);
const authorizeBlock = fc.oneof(
  fc.record({ allow: fc.array(celRule, { minLength: 1, maxLength: 3 }) }),
  fc.record({ scopes: fc.record({ all: fc.constant(['a:read']) }), roles: fc.constant(['admin']) }),
  fc.record({ response: fc.array(pick(['response.body.owner == consumer.id', 'response.status == 200', 'has(response.body.id)'], ['response.nope(']), { minLength: 1, maxLength: 2 }) }),
  fc.record({ methods: fc.record({ DELETE: fc.record({ roles: fc.constant(['admin']) }) }) }),
);
const policyOptions = fc.record(
  {
    authorize: authorizeBlock,
    limits: fc.record({ body: pick(['1KiB', '1MiB', '10GiB'], ['0', '1 MB']), url: pick([64, 8192], [63, 100000]), contentTypes: pick([['application/json'], ['application/*+json', 'text/xml']], [['*/*'], ['JSON']]), json: fc.record({ depth: pick([1, 32], [0, 1001]) }) }, { requiredKeys: [] }),
    cors: fc.record({ origins: pick([['https://app.example.com'], []], [['*'], ['app.example.com']]), credentials: fc.boolean() }, { requiredKeys: [] }),
    'ip-filter': fc.record({ deny: pick([['127.0.0.2'], ['10.0.0.0/8']], [['not-an-ip'], ['10.0.0.0/33']]), allow: pick([[], ['::1', '127.0.0.0/8']]) }, { requiredKeys: [] }),
    'rate-limit': fc.record({ limits: pick<unknown>([[{ key: ['ip'], limit: 10, window: '1m' }], [{ key: ['consumer', 'header:x-tenant'], limit: 5, window: '1s', algorithm: 'gcra' }]], [[], [{ key: ['nope'], limit: 1 }]]) }),
    'ip-rate-limit': fc.record({ limit: pick([1, 600], [0, -5]) }),
    headers: fc.constant({}),
    'request-id': fc.constant({}),
    'access-log': pick<unknown>([false, {}], [true, 'off']),
    inspect: fc.constant({}),
    concurrency: fc.record({ max: pick([1, 100], [0]) }),
    versioning: fc.record({ retire: fc.boolean() }),
  },
);
/** A few policy blocks (each one present makes the whole config less likely to be valid). */
const policyBlocks = policyOptions.chain((all) =>
  fc.subarray(Object.keys(all), { maxLength: 3 }).map((names) => Object.fromEntries(names.map((n) => [n, all[n as keyof typeof all]])) as Record<string, unknown>),
);

/** URLs that match the schemas' patterns but are not all URLs. */
const URLS = ['http://.0.0.1:1', 'http://127.0.0.1:99999', 'http://[::1', 'http://%zz', 'http://a..b', 'https://💥', 'http://user:pw@host', 'http://x_y:0', 'http://1.2.3.4.5'];
const PATHS = ['/api/*', '/items/:id', '/items/:id/sub/:name', '/files/*', '/v1/things', '/v2/things/:id', '/', '/x.y/~z'];
const BAD_PATHS = ['/a*b', '/x/:id/:id', '/x/../y', '/é', '/items/:id*', '/x:y', 'relative', '/sp ace'];
const route = (i: number) =>
  fc
    .record({
      name: pick([`r${i}`], ['Bad Name', 'r0', '']),
      match: fc.record({ path: pick(PATHS.map((p) => `/r${i}${p === '/' ? '' : p}`), BAD_PATHS), methods: fc.subarray(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'QUERY'], { minLength: 1 }), host: pick(['api.example.com', '*.example.com'], ['API.example.com', 'a..b']) }, { requiredKeys: ['path', 'methods'] }),
      upstream: pick(['app', 'other'], ['missing']),
      public: pick([true], [false]),
      allowInsecure: fc.boolean(),
      // At most one of the options that depend on the path or on `versions`.
      extra: fc.oneof(
        { weight: 6, arbitrary: fc.constant({}) },
        fc.record({ stripPrefix: pick([`/r${i}`], ['/nope', '/']) }),
        fc.record({ rewrite: pick(['/internal'], ['/internal/:id', '/:missing', 'no-slash', '/x/*']) }),
        fc.record({ version: pick(['v1'], ['v2', 'v9']) }),
      ),
      policies: fc.oneof({ weight: 3, arbitrary: policyBlocks }, jwtBlock.map((jwt) => ({ jwt, public: undefined }))),
    })
    .map(({ extra, policies, ...rest }) => {
      const out: Record<string, unknown> = { ...rest, ...extra, policies };
      if ('public' in policies) {
        // A route with its own authentication is not public.
        delete policies.public;
        out.public = false;
      }
      return JSON.parse(JSON.stringify(out)) as Record<string, unknown>;
    });
const version = (successor: string | undefined) =>
  fc
    .record({
      // A version is chosen by its path prefix or by `select`, not both.
      how: fc.oneof(
        { weight: 1, arbitrary: fc.record({ prefix: pick(['/r0', '/r1'], ['/api/', 'v1']) }) },
        { weight: 4, arbitrary: fc.record({ select: fc.oneof(fc.record({ header: fc.constant('api-version'), value: fc.constantFrom('1', '2') }), fc.record({ query: fc.constant('v'), value: fc.constant('1') }), fc.record({ mediaType: fc.constant('version'), value: fc.constant('2') })), default: fc.boolean() }) },
      ),
      lifecycle: fc.oneof(
        fc.constant({}),
        fc.record({ deprecated: pick(['2020-01-01T00:00:00Z', '2999-01-01T00:00:00Z'], ['2020-02-30T00:00:00Z', 'yesterday']), sunset: pick(['2999-06-01T00:00:00+02:00'], ['2021-01-01T00:00:00Z']), link: fc.constant('https://docs.example.com/migrate'), successor: pick(successor === undefined ? ['v1'] : [successor], ['v1', 'v9']) }, { requiredKeys: ['deprecated'] }),
      ),
    })
    .map(({ how, lifecycle }) => ({ ...how, ...lifecycle }));
const skeleton = fc.record(
  {
    mode: fc.constantFrom('production', 'development'),
    server: fc.record({ listen: fc.record({ host: pick(['127.0.0.1', '::1']), port: pick<unknown>([0, '${PORT}', 8443], [-1, 70000, '${UNSET}']) }), trustedProxies: pick([[], ['loopback'], ['10.0.0.0/8']], [['nope']]), tracing: fc.boolean() }, { requiredKeys: [] }),
    admin: fc.record({ enabled: fc.constant(false) }),
    log: fc.record({ level: fc.constantFrom('silent', 'info'), destination: fc.constant('stderr') }),
    alerts: fc.record({ webhooks: fc.record({ ops: fc.record({ url: pick(['https://hooks.example.com/x', 'http://127.0.0.1:9/hook'], ['http://hooks.example.com/x', ...URLS]), secret: fc.constant('s'.repeat(32)) }) }) }),
    upstreams: fc.record(
      {
        app: fc.record({ targets: fc.array(fc.record({ url: pick(['http://127.0.0.1:1', 'https://api.internal:8443/base/', 'http://[::1]:1', 'http://localhost'], URLS) }), { minLength: 1, maxLength: 2 }), host: pick(['target', 'preserve', 'example.com'], ['bad host']), timeouts: fc.record({ connect: pick(['1s'], ['0s']) }) }, { requiredKeys: ['targets'] }),
        other: fc.record({ targets: fc.constant([{ url: 'http://127.0.0.1:2/base' }, { url: 'https://127.0.0.1:3' }]) }),
      },
      { requiredKeys: ['app', 'other'] },
    ),
    defaults: policyBlocks.map((p) => JSON.parse(JSON.stringify({ ...p, authorize: undefined })) as Record<string, unknown>),
    // Routes name 'v1' (now and then 'v2' or 'v9', which may not exist).
    versions: fc.oneof({ weight: 1, arbitrary: fc.constant({}) }, { weight: 3, arbitrary: fc.record({ v1: version('v2'), v2: version(undefined) }, { requiredKeys: ['v1'] }) }),
    routes: fc.integer({ min: 1, max: 4 }).chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => route(i)))),
  },
  { requiredKeys: ['upstreams', 'routes'] },
);

type Mutation = { at: number; op: 'delete' | 'replace' | 'rename' | 'add' | 'wrap' | 'duplicate'; value: unknown; key: string };
const mutation: fc.Arbitrary<Mutation> = fc.record({
  at: fc.nat(),
  op: fc.constantFrom('delete', 'replace', 'rename', 'add', 'wrap', 'duplicate'),
  value: oddValue,
  key: keyName,
});

/** Every container of the tree with its keys, to pick a random place to mutate. */
function places(node: unknown, out: [Record<string, unknown> | unknown[], string | number][] = []): typeof out {
  if (node === null || typeof node !== 'object') return out;
  const container = node as Record<string, unknown> | unknown[];
  for (const key of Object.keys(container)) {
    const k = Array.isArray(container) ? Number(key) : key;
    out.push([container, k]);
    places((container as Record<string, unknown>)[key], out);
  }
  return out;
}

/** Sets an own property, even `__proto__` (which plain assignment would turn into a prototype). */
function define(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

function mutate(tree: Record<string, unknown>, mutations: readonly Mutation[]): Record<string, unknown> {
  for (const m of mutations) {
    const all = places(tree);
    if (all.length === 0) break;
    const [container, key] = all[m.at % all.length]!;
    const current = (container as Record<string | number, unknown>)[key];
    if (Array.isArray(container)) {
      const i = key as number;
      if (m.op === 'delete') container.splice(i, 1);
      else if (m.op === 'duplicate') container.splice(i, 0, structuredClone(current));
      else if (m.op === 'wrap') container[i] = [current];
      else container[i] = structuredClone(m.value);
      continue;
    }
    const k = key as string;
    if (m.op === 'delete') delete container[k];
    else if (m.op === 'rename') {
      delete container[k];
      define(container, m.key === k ? `${k}_` : m.key, current);
    } else if (m.op === 'add') define(container, m.key, structuredClone(m.value));
    else if (m.op === 'wrap') container[k] = m.value === null ? { [k]: current } : [current];
    else if (m.op === 'duplicate' && current !== null && typeof current === 'object') define(container, `${k}2`, structuredClone(current));
    else container[k] = structuredClone(m.value);
  }
  return tree;
}

/** A one-character edit of the YAML text (breaks indentation, quotes, flow collections). */
const textEdit = fc.oneof(
  { weight: 3, arbitrary: fc.constant(undefined) },
  { weight: 1, arbitrary: fc.record({ at: fc.nat(), insert: fc.constantFrom('', ' ', '\n', '\t', ':', '-', '"', "'", '{', '[', '&x ', '*x', '#', '\0', '${'), remove: fc.integer({ min: 0, max: 3 }) }) },
);

// Some cases keep the skeleton as it is: the loaded side (freezing, buildPipeline) gets exercised too.
const mutations = fc.oneof({ weight: 1, arbitrary: fc.constant([]) }, { weight: 3, arbitrary: fc.array(mutation, { minLength: 1, maxLength: 3 }) });
const mutatedConfig = fc.record({ base: skeleton, mutations, edit: textEdit }).map(({ base, mutations, edit }) => {
  let text = stringify(mutate(structuredClone(base) as Record<string, unknown>, mutations));
  if (edit !== undefined) {
    const at = edit.at % (text.length + 1);
    text = text.slice(0, at) + edit.insert + text.slice(at + edit.remove);
  }
  return text;
});

describe('fuzz: config loader', () => {
  it('any YAML-ish text → a frozen config or located errors', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof({ weight: 5, arbitrary: yamlSoup }, { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 300 }) }, { weight: 1, arbitrary: aliasBomb }), check),
      fuzz(400),
    );
  }, FUZZ_TIMEOUT);

  it('valid configs with random mutations of keys, values and types → a frozen config (that compiles or is refused with located errors) or located errors', async () => {
    let loaded = 0;
    await fc.assert(
      fc.asyncProperty(mutatedConfig, async (text) => {
        const result = load(text);
        if (result instanceof ConfigError) return assertLocated(result);
        loaded++;
        await assertLoaded(result);
      }),
      fuzz(400),
    );
    if (LONG_RUN) console.log(`config fuzz: ${loaded} of the mutated configs loaded`);
    // The generator must keep reaching the valid side, or the property says little about it.
    expect(loaded).toBeGreaterThan(0);
  }, FUZZ_TIMEOUT);

  it('any value given as a config object (library mode) → a frozen config or errors', () => {
    fc.assert(
      fc.property(fc.oneof(fc.record({ base: skeleton, mutations }).map(({ base, mutations: m }) => mutate(structuredClone(base) as Record<string, unknown>, m)), json), (value) => {
        let result: LoadedConfig;
        try {
          result = loadConfigObject(value, 'gateway');
        } catch (error) {
          if (!(error instanceof ConfigError)) throw new Error(`loadConfigObject threw ${String(error)} (not a ConfigError)`, { cause: error });
          return assertLocated(error, '<inline>');
        }
        assertDeepFrozen(result.config);
      }),
      fuzz(300),
    );
  }, FUZZ_TIMEOUT);
});
