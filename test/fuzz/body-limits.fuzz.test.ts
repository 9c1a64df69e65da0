import fc from 'fast-check';
import { Pool } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, startUpstream, type TestGateway, type TestUpstream } from '../helpers/gateway.js';
import { fuzz, FUZZ_TIMEOUT } from './fuzz.js';

/**
 * The request-body limits of the `limits` policy (src/policies/limits) over real HTTP, against
 * an exact oracle. JSON bodies: random trees (nested, wide, long strings, numbers, unicode),
 * serialized with random whitespace and `\u` escapes in keys, sometimes with a repeated key, a
 * `__proto__` or `constructor.prototype` key, or bytes cut or inserted. XML bodies: random
 * element trees with attributes, text, entities, comments, CDATA and processing instructions,
 * sometimes with a DOCTYPE, an XInclude namespace (also behind character references), an
 * encoding declaration, a byte-order mark, control characters, bytes that are not UTF-8, or
 * broken markup. The oracle works out what the policy documents (README.md of the policy):
 * forwarded byte for byte, or refused with the one documented status and code — and the
 * upstream is called exactly when the request is forwarded. Every case must be answered within
 * 5 s (no hang); the gateway never crashes.
 *
 * Reproduce a failure: FUZZ_SEED=<seed> FUZZ_PATH=<path> npx vitest run test/fuzz/body-limits.fuzz.test.ts -t '<name>'
 */

const LIMITS = { body: 16 * 1024, depth: 6, keys: 8, items: 10 };

let up: TestUpstream;
let gw: TestGateway;
let pool: Pool;

beforeAll(async () => {
  up = await startUpstream();
  const limits = { body: '16KiB', json: { depth: LIMITS.depth, keys: LIMITS.keys, items: LIMITS.items }, xml: { depth: LIMITS.depth } };
  gw = await startGateway({
    upstreams: { app: { targets: [{ url: up.url }] } },
    routes: [
      // `inspect` (injection patterns) is off: only the limits are under test.
      { name: 'json', match: { path: '/json', methods: ['POST'] }, upstream: 'app', policies: { limits, inspect: false } },
      { name: 'xml', match: { path: '/xml', methods: ['POST'] }, upstream: 'app', policies: { limits: { ...limits, contentTypes: ['application/xml', 'text/xml', 'application/soap+xml'] }, inspect: false } },
    ],
  });
  pool = new Pool(gw.url, { connections: 2, headersTimeout: 5000, bodyTimeout: 5000 });
});
afterAll(async () => {
  await pool?.close();
  await gw?.close();
  await up?.close();
});

type ValueOf<A> = A extends fc.Arbitrary<infer T> ? T : never;
/** What the policy must answer: 200 (forwarded), a refusal with its code (or one of several), or anything documented. */
type Expected = { status: 200 } | { status: number; code: string; or?: string } | 'unknown';

/** Sends the body; checks the answer against the oracle and that the upstream got exactly the bytes, or nothing. */
async function check(path: string, contentType: string, body: Buffer, expected: Expected): Promise<void> {
  const before = up.requests.length;
  const res = await pool.request({ method: 'POST', path, headers: { 'content-type': contentType }, body, signal: AbortSignal.timeout(5000) });
  const text = await res.body.text();
  const forwarded = up.requests.slice(before);
  const what = `${contentType} ${JSON.stringify(body.subarray(0, 300).toString('latin1'))}${body.length > 300 ? `… (${body.length} bytes)` : ''}`;
  if (res.statusCode === 200) {
    expect(forwarded, what).toHaveLength(1);
    expect(forwarded[0]!.body.equals(body), `${what}: the upstream got other bytes`).toBe(true);
  } else {
    expect(forwarded, `${what}: refused ${res.statusCode} but forwarded`).toHaveLength(0);
    expect(res.headers['content-type'], what).toBe('application/problem+json; charset=utf-8');
  }
  if (expected === 'unknown') {
    if (res.statusCode !== 200) expect([400, 413, 415], `${what}: ${text}`).toContain(res.statusCode);
    return;
  }
  expect(res.statusCode, `${what}: ${text}`).toBe(expected.status);
  if ('code' in expected) expect([expected.code, expected.or], what).toContain((JSON.parse(text) as { code: string }).code);
}

// ---------------------------------------------------------------------------------------------
// JSON: a tree that may hold what JSON.parse would not keep (repeated and forbidden keys).

type JsonNode = { kind: 'scalar'; value: unknown } | { kind: 'array'; items: JsonNode[] } | { kind: 'object'; entries: [string, JsonNode][] };

const jsonKey = fc.oneof({ weight: 6, arbitrary: fc.stringMatching(/^[a-z]{1,6}$/) }, { weight: 2, arbitrary: fc.string({ maxLength: 6 }) }, { weight: 1, arbitrary: fc.constantFrom('', 'constructor', 'prototype', '$where', 'a.b', '\u0000', 'é', '😀', 'toString') });
const scalar = fc.oneof(fc.constant(null), fc.boolean(), fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.string({ maxLength: 20 }), fc.string({ unit: 'binary', maxLength: 8 }), fc.constantFrom(1e308, -0, 0.1, 'x'.repeat(2000)));
const { node: jsonNode } = fc.letrec<{ node: JsonNode }>((tie) => ({
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true, maxDepth: 5, depthIdentifier: 'json' },
    { weight: 3, arbitrary: scalar.map((value) => ({ kind: 'scalar' as const, value })) },
    { weight: 1, arbitrary: fc.array(tie('node'), { maxLength: 14, depthIdentifier: 'json' }).map((items) => ({ kind: 'array' as const, items })) },
    { weight: 1, arbitrary: fc.uniqueArray(fc.tuple(jsonKey, tie('node')), { maxLength: 11, selector: ([k]) => k, depthIdentifier: 'json' }).map((entries) => ({ kind: 'object' as const, entries })) },
  ),
}));
/** Wraps a tree in `levels` arrays or objects, to reach past the depth limit. */
const deepened = fc.tuple(jsonNode, fc.integer({ min: 0, max: 9 }), fc.boolean()).map(([inner, levels, asArray]) => {
  let node = inner;
  for (let i = 0; i < levels; i++) node = asArray ? { kind: 'array', items: [node] } : { kind: 'object', entries: [['k', node]] };
  return node;
});

/** A hostile addition, at the root object or at the first object found. */
type JsonTwist = 'none' | 'duplicate' | 'proto' | 'escaped-proto' | 'constructor-prototype' | 'escaped-duplicate';
const jsonTwist = fc.oneof({ weight: 6, arbitrary: fc.constant<JsonTwist>('none') }, { weight: 1, arbitrary: fc.constantFrom<JsonTwist>('duplicate', 'proto', 'escaped-proto', 'constructor-prototype', 'escaped-duplicate') });

function firstObject(node: JsonNode): Extract<JsonNode, { kind: 'object' }> | undefined {
  const stack = [node];
  while (stack.length > 0) {
    const n = stack.shift()!;
    if (n.kind === 'object') return n;
    if (n.kind === 'array') stack.push(...n.items);
  }
  return undefined;
}

const escapeAll = (key: string) => `"${[...key].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join('')}"`;

function serialize(node: JsonNode, space: string, escapeKeys: boolean, raw: Map<JsonNode, string>): string {
  if (node.kind === 'scalar') return JSON.stringify(node.value);
  if (node.kind === 'array') return `[${space}${node.items.map((n) => serialize(n, space, escapeKeys, raw)).join(`,${space}`)}${space}]`;
  return `{${space}${node.entries.map(([k, v]) => `${raw.get(v) ?? (escapeKeys ? escapeAll(k) : JSON.stringify(k))}:${space}${serialize(v, space, escapeKeys, raw)}`).join(`,${space}`)}${space}}`;
}

/** Depth, widest object and longest array, as the policy counts them (containers only). */
function shape(node: JsonNode, depth = 1): { depth: number; keys: number; items: number } {
  if (node.kind === 'scalar') return { depth: 0, keys: 0, items: 0 };
  const children = node.kind === 'array' ? node.items : node.entries.map(([, v]) => v);
  const own = { depth, keys: node.kind === 'object' ? new Set(node.entries.map(([k]) => k)).size : 0, items: node.kind === 'array' ? node.items.length : 0 };
  for (const c of children) {
    const s = shape(c, depth + 1);
    own.depth = Math.max(own.depth, s.depth);
    own.keys = Math.max(own.keys, s.keys);
    own.items = Math.max(own.items, s.items);
  }
  return own;
}

const jsonCase = fc.record({
  tree: deepened,
  twist: jsonTwist,
  space: fc.constantFrom('', ' ', '\n', '\t', '\r\n  '),
  escapeKeys: fc.boolean(),
  edit: fc.oneof({ weight: 5, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.record({ at: fc.nat(), insert: fc.constantFrom('', ',', '{', '"', ']', 'x', '\\', '\u0000', '\uFEFF'), remove: fc.integer({ min: 0, max: 2 }) }) }),
  contentType: fc.constantFrom('application/json', 'application/json; charset=utf-8', 'application/vnd.api+json', 'application/problem+json'),
  bom: fc.oneof({ weight: 9, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
});

function buildJson(c: ValueOf<typeof jsonCase>): { body: Buffer; expected: Expected } {
  const tree = structuredClone(c.tree);
  const raw = new Map<JsonNode, string>();
  const target = firstObject(tree);
  let forbidden = false;
  let duplicate = false;
  if (target !== undefined && c.twist !== 'none') {
    const value: JsonNode = { kind: 'scalar', value: 1 };
    if (c.twist === 'proto' || c.twist === 'escaped-proto') {
      target.entries.push(['__proto__', value]);
      if (c.twist === 'escaped-proto') raw.set(value, '"\\u005f_proto__"');
      forbidden = true;
    } else if (c.twist === 'constructor-prototype') {
      target.entries = target.entries.filter(([k]) => k !== 'constructor');
      target.entries.push(['constructor', { kind: 'object', entries: [['prototype', value]] }]);
      forbidden = true;
    } else if (target.entries.length > 0) {
      const [key] = target.entries[0]!;
      target.entries.push([key, value]);
      if (c.twist === 'escaped-duplicate') raw.set(value, escapeAll(key));
      duplicate = true;
    }
  }
  let text = serialize(tree, c.space, c.escapeKeys, raw);
  if (c.bom) text = `\uFEFF${text}`;
  let edited = false;
  if (c.edit !== undefined) {
    const at = c.edit.at % (text.length + 1);
    const next = text.slice(0, at) + c.edit.insert + text.slice(at + c.edit.remove);
    edited = next !== text;
    text = next;
  }
  const body = Buffer.from(text);
  if (body.length > LIMITS.body) return { body, expected: { status: 413, code: 'RMP_BODY_TOO_LARGE' } };
  // `Content-Length: 0`: there is no body to check, whatever its type says.
  if (body.length === 0) return { body, expected: { status: 200 } };
  if (edited || c.bom) {
    // An edit usually breaks the JSON; when it does not (or a byte-order mark leads, which the
    // parser may drop), the oracle cannot tell what it means.
    try {
      JSON.parse(text.replace(/^\uFEFF/, ''));
    } catch {
      return { body, expected: { status: 400, code: 'RMP_JSON_INVALID' } };
    }
    return { body, expected: 'unknown' };
  }
  if (forbidden) return { body, expected: { status: 400, code: 'RMP_JSON_FORBIDDEN_KEY' } };
  // A key of the generator itself may be `constructor` holding an object with `prototype`.
  if (/"constructor"/.test(text) || c.escapeKeys) {
    try {
      JSON.parse(text, (_k, v: unknown) => {
        if (v !== null && typeof v === 'object' && Object.hasOwn(v, 'constructor')) {
          const ctor = (v as { constructor: unknown }).constructor;
          if (ctor !== null && typeof ctor === 'object' && Object.hasOwn(ctor, 'prototype')) throw new Error('forbidden');
        }
        return v;
      });
    } catch {
      return { body, expected: { status: 400, code: 'RMP_JSON_FORBIDDEN_KEY' } };
    }
  }
  if (duplicate) return { body, expected: { status: 400, code: 'RMP_JSON_DUPLICATE_KEY' } };
  const s = shape(tree);
  if (s.depth > LIMITS.depth || s.keys > LIMITS.keys || s.items > LIMITS.items) return { body, expected: { status: 400, code: 'RMP_JSON_LIMIT_EXCEEDED' } };
  return { body, expected: { status: 200 } };
}

// ---------------------------------------------------------------------------------------------
// XML: a well-formed tree whose depth the oracle knows, then hostile or broken additions.

type XmlNode = { kind: 'element'; name: string; attributes: [string, string][]; children: XmlNode[] } | { kind: 'text' | 'comment' | 'cdata' | 'pi'; text: string };

const xmlName = fc.oneof({ weight: 6, arbitrary: fc.stringMatching(/^[a-z][a-z0-9]{0,5}$/) }, { weight: 1, arbitrary: fc.constantFrom('__proto__', 'constructor', 'prototype', 'a:b', 'x-y', 'x.y', '_', 'é', 'hasOwnProperty') });
const xmlText = fc.oneof(
  fc.stringMatching(/^[a-zA-Z0-9 .,;:!?()-]{0,20}$/),
  fc.constantFrom('&amp;', '&lt;', '&gt;', '&quot;', '&apos;', '&#65;', '&#x41;', '&#x1F600;', 'é', '😀', ' \n\t ', 'x'.repeat(1000)),
);
const { element } = fc.letrec<{ element: XmlNode; child: XmlNode }>((tie) => ({
  element: fc.record({
    name: xmlName,
    attributes: fc.uniqueArray(fc.tuple(fc.stringMatching(/^[a-z]{1,4}$/), xmlText), { maxLength: 3, selector: ([n]) => n }),
    children: fc.array(tie('child'), { maxLength: 5, depthIdentifier: 'xml' }),
  }).map((e) => ({ kind: 'element' as const, ...e })),
  // Past maxDepth, oneof takes its first arbitrary: text ends the recursion.
  child: fc.oneof(
    { depthSize: 'small', withCrossShrink: true, maxDepth: 5, depthIdentifier: 'xml' },
    { weight: 2, arbitrary: xmlText.map((text) => ({ kind: 'text' as const, text })) },
    { weight: 3, arbitrary: tie('element') },
    { weight: 1, arbitrary: fc.stringMatching(/^[a-z ]{0,10}$/).map((text) => ({ kind: 'comment' as const, text })) },
    { weight: 1, arbitrary: fc.stringMatching(/^[a-z <>&"]{0,10}$/).map((text) => ({ kind: 'cdata' as const, text })) },
    { weight: 1, arbitrary: fc.stringMatching(/^[a-z ]{0,8}$/).map((text) => ({ kind: 'pi' as const, text })) },
  ),
}));
const deepXml = fc.tuple(element, fc.integer({ min: 0, max: 8 }), xmlName).map(([inner, levels, name]) => {
  let node = inner;
  for (let i = 0; i < levels; i++) node = { kind: 'element', name, attributes: [], children: [node] };
  return node;
});

function xmlDepth(node: XmlNode): number {
  if (node.kind !== 'element') return 0;
  return 1 + Math.max(0, ...node.children.map(xmlDepth));
}

function renderXml(node: XmlNode, space: string, xinclude: string | undefined): string {
  switch (node.kind) {
    case 'text':
      return node.text;
    case 'comment':
      return `<!--${node.text}-->`;
    case 'cdata':
      return `<![CDATA[${node.text}]]>`;
    case 'pi':
      return `<?pi ${node.text}?>`;
    default: {
      const attrs = [...(xinclude !== undefined ? [` xmlns:xi="${xinclude}"`] : []), ...node.attributes.map(([n, v]) => ` ${n}=${space === '' ? '"' : "'"}${v.replace(/"/g, '&quot;').replace(/'/g, '&apos;')}${space === '' ? '"' : "'"}`)].join('');
      return node.children.length === 0 && space !== '\n'
        ? `<${node.name}${attrs}/>`
        : `<${node.name}${attrs}>${space}${node.children.map((c) => renderXml(c, space, undefined)).join(space)}${space}</${node.name}>`;
    }
  }
}

type XmlTwist = 'none' | 'doctype' | 'entity' | 'doctype-lower' | 'xinclude' | 'xinclude-2003' | 'xinclude-charref' | 'nul' | 'control' | 'not-utf8' | 'utf16' | 'second-root' | 'text-before' | 'unclosed' | 'mismatched' | 'duplicate-attribute' | 'lt-in-text' | 'ampersand' | 'no-root';
const xmlTwist = fc.oneof(
  { weight: 12, arbitrary: fc.constant<XmlTwist>('none') },
  { weight: 1, arbitrary: fc.constantFrom<XmlTwist>('doctype', 'entity', 'doctype-lower', 'xinclude', 'xinclude-2003', 'xinclude-charref', 'nul', 'control', 'not-utf8', 'utf16', 'second-root', 'text-before', 'unclosed', 'mismatched', 'duplicate-attribute', 'lt-in-text', 'ampersand', 'no-root') },
);
const declaration = fc.constantFrom('', '', '<?xml version="1.0"?>', '<?xml version="1.0" encoding="UTF-8"?>', "<?xml version='1.0' encoding='utf-8' standalone='yes'?>", '<?xml version="1.0" encoding="US-ASCII"?>', '<?xml version="1.0" encoding="ISO-8859-1"?>', '<?xml version="1.0" encoding="UTF-16"?>', '<?xml version="1.0" encoding="UTF-8" encoding="latin1"?>', '<?xml version="1.0"');

const xmlCase = fc.record({
  tree: deepXml,
  twist: xmlTwist,
  declaration,
  space: fc.constantFrom('', '', ' ', '\n'),
  leading: fc.constantFrom('', ' \n', '\uFEFF', '\t'),
  contentType: fc.constantFrom('application/xml', 'text/xml', 'application/soap+xml', 'application/xml; charset=utf-8', 'application/xml; charset=US-ASCII', 'text/xml; charset=iso-8859-1', 'application/xml; charset=utf-16'),
  comment: fc.boolean(),
});

function buildXml(c: ValueOf<typeof xmlCase>): { body: Buffer; expected: Expected } {
  const t = c.twist;
  const xinclude = t === 'xinclude' ? 'http://www.w3.org/2001/XInclude' : t === 'xinclude-2003' ? 'http://www.w3.org/2003/XInclude' : t === 'xinclude-charref' ? 'http://www.w3.org/2001/&#88;Include' : undefined;
  let doc = renderXml(c.tree, c.space, xinclude);
  const INVALID = { status: 400, code: 'RMP_XML_INVALID' };
  const FORBIDDEN = { status: 400, code: 'RMP_XML_FORBIDDEN' };
  let structural: typeof INVALID | undefined;
  switch (t) {
    case 'second-root':
      doc += '<other/>';
      structural = INVALID;
      break;
    case 'text-before':
      doc = `text${doc}`;
      break;
    case 'no-root':
      doc = '';
      structural = INVALID;
      break;
    case 'unclosed':
      doc = doc.replace(/<\/[^>]*>$/, '').replace(/\/>$/, '>');
      structural = INVALID;
      break;
    case 'mismatched':
      doc = doc.replace(/<\/([^>]*)>$/, '</$1x>').replace(/\/>$/, '></mismatch>');
      structural = INVALID;
      break;
    case 'duplicate-attribute':
      doc = doc.replace(/^<([^ />]+)/, '<$1 dup="1" dup="2"');
      structural = INVALID;
      break;
    case 'lt-in-text':
      doc = doc.replace(/^(<[^>]*[^/]>|<[^>]*\/>)/, (m) => (m.endsWith('/>') ? `${m.slice(0, -2)}>a < b</${c.tree.kind === 'element' ? c.tree.name : 'x'}>` : `${m}a < b`));
      structural = INVALID;
      break;
    case 'ampersand':
      doc = doc.replace(/^(<[^>]*[^/]>|<[^>]*\/>)/, (m) => (m.endsWith('/>') ? `${m.slice(0, -2)}>a & b</${c.tree.kind === 'element' ? c.tree.name : 'x'}>` : `${m}a & b`));
      structural = INVALID;
      break;
  }
  if (c.comment) doc = `<!-- a comment -->${c.space}${doc}`;
  const doctype = t === 'doctype' ? '<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>' : t === 'doctype-lower' ? '<!doctype r>' : t === 'entity' ? '<!ENTITY x "y">' : '';
  let text = `${c.leading}${c.declaration}${c.declaration === '' ? '' : c.space}${doctype}${doc}`;
  if (t === 'nul') text = text.replace(/>/, '>\u0000');
  if (t === 'control') text = text.replace(/>/, '>\u0007');
  let body = t === 'utf16' ? Buffer.from(`\uFEFF${text}`, 'utf16le') : Buffer.from(text);
  if (t === 'not-utf8') body = Buffer.concat([body.subarray(0, Math.floor(body.length / 2)), Buffer.from([0xc3, 0x28]), body.subarray(Math.floor(body.length / 2))]);

  // The checks, in the order the policy documents them.
  const charset = /charset=([^;]+)/i.exec(c.contentType)?.[1]?.toLowerCase();
  if (body.length > LIMITS.body) return { body, expected: { status: 413, code: 'RMP_BODY_TOO_LARGE' } };
  if (body.length === 0) return { body, expected: { status: 200 } };
  if (charset !== undefined && charset !== 'utf-8' && charset !== 'us-ascii') return { body, expected: { status: 415, code: 'RMP_UNSUPPORTED_MEDIA_TYPE' } };
  if (t === 'utf16' || t === 'not-utf8') return { body, expected: INVALID };
  if (t === 'nul' || t === 'control') return { body, expected: INVALID };
  const decoded = text.replace(/^\uFEFF/, '');
  const start = decoded.search(/[^ \t\r\n]/);
  if (start === -1 || decoded[start] !== '<') return { body, expected: INVALID };
  const declared = /encoding\s*=\s*["']([^"']*)["']/i.exec(c.declaration)?.[1]?.toLowerCase();
  // An unterminated declaration runs to the next `?>` (of a processing instruction), if any.
  const unterminated = c.declaration === '<?xml version="1.0"';
  if (unterminated && !decoded.includes('?>')) return { body, expected: INVALID };
  if (/encoding.*encoding/i.test(c.declaration) || (declared !== undefined && declared !== 'utf-8' && declared !== 'us-ascii')) return { body, expected: INVALID };
  if ((declared === 'us-ascii' || charset === 'us-ascii') && /[^\0-\x7f]/.test(decoded)) return { body, expected: INVALID };
  if (doctype !== '') return { body, expected: FORBIDDEN };
  if (xinclude !== undefined) return { body, expected: FORBIDDEN };
  if (t === 'text-before' || unterminated) structural = INVALID;
  // An XML declaration must open the document: whitespace before it is malformed (a BOM is not text).
  if (c.declaration !== '' && /^[ \t\r\n]/.test(c.leading.replace(/^\uFEFF/, ''))) structural = INVALID;
  const tooDeep = xmlDepth(c.tree) > LIMITS.depth;
  // Broken markup in a document that is also too deep: whichever the parser meets first.
  if (structural !== undefined) return { body, expected: tooDeep ? { ...INVALID, or: 'RMP_XML_LIMIT_EXCEEDED' } : structural };
  if (tooDeep) return { body, expected: { status: 400, code: 'RMP_XML_LIMIT_EXCEEDED' } };
  return { body, expected: { status: 200 } };
}

describe('fuzz: JSON and XML body limits over HTTP', () => {
  it('JSON bodies are forwarded byte for byte or refused with the documented code', async () => {
    const outcomes = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(jsonCase, async (c) => {
        const { body, expected } = buildJson(c);
        const key = expected === 'unknown' ? 'unknown' : 'code' in expected ? expected.code : '200';
        outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
        await check('/json', c.contentType, body, expected);
      }),
      fuzz(500, { endOnFailure: true }),
    );
    // Every outcome was reached, so the oracle was exercised on each.
    for (const code of ['200', 'RMP_JSON_LIMIT_EXCEEDED', 'RMP_JSON_INVALID', 'RMP_JSON_FORBIDDEN_KEY', 'RMP_JSON_DUPLICATE_KEY']) expect(outcomes.get(code) ?? 0, code).toBeGreaterThan(0);
  }, FUZZ_TIMEOUT);

  it('XML bodies are forwarded byte for byte or refused with the documented code; none with a DTD is forwarded', async () => {
    const outcomes = new Map<string, number>();
    const first = up.requests.length;
    await fc.assert(
      fc.asyncProperty(xmlCase, async (c) => {
        const { body, expected } = buildXml(c);
        const key = expected === 'unknown' ? 'unknown' : 'code' in expected ? expected.code : '200';
        outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
        await check('/xml', c.contentType, body, expected);
      }),
      fuzz(500, { endOnFailure: true }),
    );
    for (const code of ['200', 'RMP_XML_LIMIT_EXCEEDED', 'RMP_XML_INVALID', 'RMP_XML_FORBIDDEN', 'RMP_UNSUPPORTED_MEDIA_TYPE']) expect(outcomes.get(code) ?? 0, code).toBeGreaterThan(0);
    for (const sent of up.requests.slice(first)) expect(/<!(?!--|\[CDATA\[)/.test(sent.body.toString('utf8')), sent.body.toString('utf8')).toBe(false);
  }, FUZZ_TIMEOUT);
});
