import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RampartError } from '../../src/errors/problem.js';
import type { BufferedResponse, Consumer, RequestContext } from '../../src/gateway/context.js';
import { createEvents } from '../../src/observability/events.js';
import { createLogger } from '../../src/observability/logger.js';
import { authorizePolicy } from '../../src/policies/authorize/policy.js';
import type { PolicyContext, PolicyHooks } from '../../src/policies/define.js';
import { Stores } from '../../src/stores/stores.js';
import { optionsOf } from '../helpers/policy-config.js';
import { fuzz, FUZZ_TIMEOUT, LONG_RUN } from './fuzz.js';

/**
 * CEL rule compilation and evaluation in the `authorize` policy (src/policies/authorize,
 * @bufbuild/cel). Random expressions — from a CEL grammar (literals at the edges of int, uint,
 * double, string and bytes, every operator, field selection, indexing, calls, methods, macros,
 * lists, maps, ternaries, deep nesting) and plain random text — are compiled as request rules
 * (`allow`, per method too) and response rules (`response`). Compiling either refuses the rule
 * with an Error naming it (a config error, located by the loader) or gives a policy; evaluating
 * it on random bindings (request path, params, query, headers, the consumer with arbitrary JSON
 * claims, a response body of any JSON) either allows or denies with the documented RampartError
 * — a rule that throws would turn a denial into a 500.
 *
 * Reproduce a failure: FUZZ_SEED=<seed> FUZZ_PATH=<path> npx vitest run test/fuzz/cel.fuzz.test.ts -t '<name>'
 */

const logger = createLogger({ level: 'silent', destination: 'stderr' });
const policyContext: PolicyContext = {
  route: 'fuzz',
  mode: 'production',
  configDir: '/tmp',
  dataDir: '/tmp',
  logger,
  events: createEvents(logger),
  stores: new Stores(logger, { connect: false }),
  redis: undefined,
  identity: undefined,
  proxied: true,
  openapi: undefined,
};

// ---------------------------------------------------------------------------------------------
// Expressions.

const literal = fc.constantFrom(
  '0', '1', '-1', '42', '9223372036854775807', '9223372036854775808', '-9223372036854775808', '-9223372036854775809', '0x7fffffffffffffff', '0xFFFFFFFFFFFFFFFF', '1u', '0u', '18446744073709551615u', '18446744073709551616u',
  '1.5', '-0.0', '.5', '1e308', '1e309', '1e-400', '0.1', 'NaN',
  '""', '"a"', "'b'", '"user-1"', '"\\x41"', '"\\u00e9"', '"\\U0001F600"', '"\\ud800"', '"\\777"', 'r"\\d+"', 'R"raw"', '"""multi\nline"""', "'''x'''", 'b"abc"', 'b"\\xff\\x00"', "B'x'", '"\\q"',
  'true', 'false', 'null', '[]', '{}', '[1, 2, 3]', '{"a": 1}', '{1: "x"}',
  'timestamp("2024-01-01T00:00:00Z")', 'timestamp("not a time")', 'duration("1h")', 'duration("99999999999h")', 'duration("-1s")',
);
const name = fc.constantFrom(
  'request', 'consumer', 'response', 'request.path', 'request.method', 'request.params', 'request.params.id', 'request.params.nope', 'request.query', 'request.query.x', 'request.headers', 'request.headers["x-tenant"]',
  'consumer.id', 'consumer.type', 'consumer.claims', 'consumer.claims.sub', 'consumer.claims.tenant', 'consumer.claims.items', 'consumer.claims.n', 'consumer.scopes', 'consumer.roles',
  'response.status', 'response.body', 'response.body.id', 'response.body.owner', 'response.body.items', 'x', 'y', '.request', 'int', 'string', 'dyn', 'type', 'google.protobuf.Timestamp', 'null_type', 'bool',
);
const binary = fc.constantFrom('+', '-', '*', '/', '%', '==', '!=', '<', '<=', '>', '>=', '&&', '||', 'in');
const unary = fc.constantFrom('!', '-', '!!', '--', '-!');
const fn = fc.constantFrom('size', 'int', 'uint', 'double', 'string', 'bytes', 'bool', 'dyn', 'type', 'has', 'timestamp', 'duration', 'matches', 'exists', 'nope', 'max', 'math.greatest', 'strings.quote');
const method = fc.constantFrom('startsWith', 'endsWith', 'contains', 'matches', 'size', 'getHours', 'getFullYear', 'getDayOfWeek', 'lowerAscii', 'upperAscii', 'charAt', 'split', 'join', 'indexOf', 'replace', 'substring', 'trim', 'format', 'nope');
const macro = fc.constantFrom('all', 'exists', 'exists_one', 'map', 'filter');
const variable = fc.constantFrom('x', 'y', 'request', 'consumer', '__result__', 'it', '1');
const regex = fc.constantFrom('"^a"', '"(a+)+$"', '"["', '"\\\\d"', '".*"', '"(?i)USER"', '"\\\\p{L}"', '"a{1,1000}"', '"(?P<n>x)"', '""');

const { expr } = fc.letrec<{ expr: string }>((tie) => ({
  // Past maxDepth, oneof takes its first arbitrary: a literal or a name ends the recursion.
  expr: fc.oneof(
    { maxDepth: 4, depthIdentifier: 'cel', withCrossShrink: true },
    { weight: 4, arbitrary: fc.oneof(literal, name) },
    { weight: 3, arbitrary: fc.tuple(tie('expr'), binary, tie('expr')).map(([a, op, b]) => `${a} ${op} ${b}`) },
    { weight: 1, arbitrary: fc.tuple(unary, tie('expr')).map(([op, a]) => `${op}${a}`) },
    { weight: 1, arbitrary: fc.tuple(tie('expr'), tie('expr'), tie('expr')).map(([a, b, c]) => `${a} ? ${b} : ${c}`) },
    { weight: 1, arbitrary: tie('expr').map((a) => `(${a})`) },
    { weight: 1, arbitrary: fc.tuple(tie('expr'), fc.constantFrom('id', 'sub', 'owner', 'items', 'path', 'nope', '0', 'size')).map(([a, f]) => `${a}.${f}`) },
    { weight: 1, arbitrary: fc.tuple(tie('expr'), tie('expr')).map(([a, i]) => `${a}[${i}]`) },
    { weight: 2, arbitrary: fc.tuple(fn, fc.array(tie('expr'), { maxLength: 3, depthIdentifier: 'cel' })).map(([f, args]) => `${f}(${args.join(', ')})`) },
    { weight: 2, arbitrary: fc.tuple(tie('expr'), method, fc.array(fc.oneof(tie('expr'), regex), { maxLength: 2, depthIdentifier: 'cel' })).map(([r, m, args]) => `${r}.${m}(${args.join(', ')})`) },
    { weight: 2, arbitrary: fc.tuple(tie('expr'), macro, variable, tie('expr')).map(([r, m, v, b]) => `${r}.${m}(${v}, ${b})`) },
    { weight: 1, arbitrary: fc.array(tie('expr'), { maxLength: 3, depthIdentifier: 'cel' }).map((items) => `[${items.join(', ')}]`) },
    { weight: 1, arbitrary: fc.array(fc.tuple(tie('expr'), tie('expr')), { maxLength: 2, depthIdentifier: 'cel' }).map((entries) => `{${entries.map(([k, v]) => `${k}: ${v}`).join(', ')}}`) },
  ),
}));

const nested = fc.record({ n: fc.integer({ min: 1, max: 990 }), kind: fc.constantFrom('(', '-', '!', '[', 'a.', 'f(') }).map(({ n, kind }) => {
  if (kind === '(') return `${'('.repeat(n)}1${')'.repeat(n)}`;
  if (kind === '[') return `${'['.repeat(n)}1${']'.repeat(n)}`;
  if (kind === 'a.') return `request${'.a'.repeat(Math.floor(n / 2))}`;
  if (kind === 'f(') return `${'size('.repeat(Math.floor(n / 5))}"x"${')'.repeat(Math.floor(n / 5))}`;
  return `${kind.repeat(n)}1`;
});

/** A one-character edit of a grammar expression (an unbalanced bracket, a cut string). */
const edited = fc.tuple(expr, fc.nat(), fc.constantFrom('', '(', ')', '"', "'", '.', ',', '[', '{', '\\', '\0', '?', ':', '😀')).map(([e, at, c]) => e.slice(0, at % (e.length + 1)) + c + e.slice((at % (e.length + 1)) + 1));

const rule = fc
  .oneof({ weight: 6, arbitrary: expr }, { weight: 1, arbitrary: edited }, { weight: 1, arbitrary: nested }, { weight: 1, arbitrary: fc.string({ maxLength: 40 }) }, { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 20 }) })
  // What the config schema lets through (1 to 2000 characters).
  .filter((r) => r.length >= 1 && r.length <= 2000);

// ---------------------------------------------------------------------------------------------
// Bindings: what a request, its consumer and the upstream's answer can be.

const short = fc.string({ maxLength: 16 });
const claims = fc.record(
  {
    sub: fc.oneof(short, fc.integer(), fc.constant(null)),
    tenant: short,
    items: fc.array(fc.jsonValue({ maxDepth: 1 }), { maxLength: 6 }),
    n: fc.oneof(fc.integer(), fc.double(), fc.constant(2 ** 63)),
    extra: fc.jsonValue({ maxDepth: 2 }),
  },
  { requiredKeys: [] },
);
const bindings = fc.record({
  method: fc.constantFrom('GET', 'HEAD', 'POST', 'PUT', 'DELETE'),
  path: fc.oneof(fc.constant('/api/items/1'), short.map((s) => `/${s}`)),
  params: fc.dictionary(fc.constantFrom('id', 'userId', 'x'), short, { maxKeys: 2 }),
  query: fc.oneof(fc.constant(''), fc.array(fc.tuple(fc.constantFrom('x', 'y', 'X', '__proto__'), short), { maxLength: 3 }).map((q) => `?${q.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&')}`)),
  headers: fc.dictionary(fc.constantFrom('x-tenant', 'x', 'accept', 'authorization', 'cookie'), short, { maxKeys: 3 }),
  consumer: fc.record({ id: short, type: fc.constantFrom<Consumer['type']>('user', 'client', 'apiKey'), scopes: fc.array(short, { maxLength: 3 }), roles: fc.array(fc.constantFrom('admin', 'user', ''), { maxLength: 2 }), claims }),
  status: fc.constantFrom(200, 201, 204, 404, 500),
  body: fc.jsonValue({ maxDepth: 3 }),
});
type Bindings = typeof bindings extends fc.Arbitrary<infer T> ? T : never;

function context(b: Bindings): RequestContext {
  return {
    request: { method: b.method, headers: b.headers },
    path: b.path,
    params: b.params,
    query: b.query,
    consumer: Object.freeze({ ...b.consumer, claims: Object.freeze(b.consumer.claims) }),
    requestId: 'fuzz',
    clientIp: '127.0.0.1',
    route: { name: 'fuzz' },
    evented: false,
    hiddenHeaders: undefined,
    responseChecks: undefined,
  } as unknown as RequestContext;
}

type Where = 'allow' | 'method' | 'response';

/** Compiles the rule: a policy, or undefined when it is refused as a config error would be. */
function compile(r: string, where: Where): PolicyHooks | undefined {
  const options = where === 'allow' ? { allow: [r] } : where === 'method' ? { methods: { GET: { allow: [r] }, POST: { allow: ['true', r] } } } : { response: [r] };
  try {
    return authorizePolicy.create(optionsOf('authorize', options) as never, policyContext);
  } catch (error) {
    if (error instanceof Error && error.message.startsWith('CEL rule ') && !(error instanceof RampartError)) return undefined;
    throw new Error(`compiling ${JSON.stringify(r)} threw ${String(error)}, not a config error naming the rule`, { cause: error });
  }
}

function run(step: () => unknown, codes: readonly string[], what: string): void {
  try {
    step();
  } catch (error) {
    if (error instanceof RampartError && codes.includes(error.code)) return;
    throw new Error(`${what} threw ${String(error)}, not ${codes.join(' or ')}`, { cause: error });
  }
}

describe('fuzz: CEL rules of the authorize policy', () => {
  it('any expression compiles to a rule or is refused as a config error; a compiled rule allows or denies on any bindings, never throws', async () => {
    const counts = { refused: 0, compiled: 0 };
    await fc.assert(
      fc.asyncProperty(rule, fc.constantFrom<Where>('allow', 'method', 'response'), fc.array(bindings, { minLength: 1, maxLength: 3 }), async (r, where, cases) => {
        const hooks = compile(r, where);
        if (hooks === undefined) {
          counts.refused++;
          return;
        }
        counts.compiled++;
        for (const b of cases) {
          const ctx = context(b);
          const what = `${where} rule ${JSON.stringify(r)} on ${JSON.stringify(b)}`;
          run(() => hooks.request!(ctx), ['RMP_AUTHZ_DENIED'], what);
          for (const check of ctx.responseChecks ?? []) {
            const response: BufferedResponse = { status: b.status, mediaType: 'application/json', json: structuredClone(b.body), changed: false };
            run(() => check(response), ['RMP_OBJECT_NOT_FOUND', 'RMP_RESPONSE_CHECK_FAILED'], what);
          }
        }
      }),
      fuzz(600),
    );
    if (LONG_RUN) console.log(`cel fuzz: ${counts.compiled} rules compiled, ${counts.refused} refused`);
    // Both sides were reached.
    expect(counts.refused).toBeGreaterThan(0);
    expect(counts.compiled).toBeGreaterThan(0);
  }, FUZZ_TIMEOUT);
});
