import { describe, expect, it } from 'vitest';
import { scanJson, jsonMayOffend, type JsonRules } from './json.js';
import { MAX_FINDINGS, type Finding } from './findings.js';
import { NOSQL_OPERATORS } from './operators.js';

const rules: JsonRules = {
  nosqlOperators: true,
  anyDollarKey: false,
  nulBytes: true,
  crlfNames: new Set(['filename']),
  crlfPointers: new Set(['/redirect~1to', '/list/2']),
};

/** A small seeded generator, so a failure replays. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const STRINGS = ['', 'a', '$ne', '$where', '$schema', 'x\u0000y', 'line\nbreak', 'cr\r', 'q"uote', 'back\\slash', '\\"$ne', 'é日本🎉', 'a/b~c', 'filename', 'redirect/to', 'list', '\u2028', '\\u0000'];

function value(rand: () => number, depth: number): unknown {
  const r = rand();
  if (depth > 5 || r < 0.3) return STRINGS[Math.floor(rand() * STRINGS.length)];
  if (r < 0.4) return [1, -2.5e3, true, false, null][Math.floor(rand() * 5)];
  if (r < 0.7) return Array.from({ length: Math.floor(rand() * 4) }, () => value(rand, depth + 1));
  const object: Record<string, unknown> = {};
  for (let i = Math.floor(rand() * 4); i > 0; i--) object[STRINGS[Math.floor(rand() * STRINGS.length)]!] = value(rand, depth + 1);
  return object;
}

const escape = (token: string) => [...token.replaceAll('~', '~0').replaceAll('/', '~1')].map((c) => (c.charCodeAt(0) < 0x20 || c === '\u007f' ? '\ufffd' : c)).join('');

/** What the scan must find, by a plain recursive walk over the parsed value (no duplicate keys here). */
function expected(root: unknown): Finding[] {
  const out: Finding[] = [];
  const walk = (node: unknown, path: string[], exact: string[]): void => {
    const pointer = '/body' + path.map((p) => '/' + p).join('');
    if (typeof node === 'string') {
      const owner = exact.length === 0 ? undefined : path.length >= 1 ? exact : undefined;
      if (node.includes('\0')) out.push({ rule: 'nulBytes', pointer, detail: '' });
      else if ((node.includes('\n') || node.includes('\r')) && owner !== undefined && headerBound(exact, root)) out.push({ rule: 'crlf', pointer, detail: '' });
      return;
    }
    if (node === null || typeof node !== 'object') return;
    if (Array.isArray(node)) {
      node.forEach((item, i) => walk(item, [...path, String(i)], [...exact, String(i)]));
      return;
    }
    for (const [key, child] of Object.entries(node)) {
      const keyPath = [...path, escape(key)];
      const keyPointer = '/body' + keyPath.map((p) => '/' + p).join('');
      if (NOSQL_OPERATORS.has(key)) out.push({ rule: 'nosqlOperators', pointer: keyPointer, detail: '' });
      else if (key.includes('\0')) out.push({ rule: 'nulBytes', pointer: keyPointer, detail: '' });
      walk(child, keyPath, [...exact, key]);
    }
  };
  walk(root, [], []);
  return out;
}

/** The string at `exact` is a configured field's value or an item of its array value. */
function headerBound(exact: string[], root: unknown): boolean {
  const at = (path: string[]) => path.reduce<unknown>((node, key) => (node as Record<string, unknown>)[key], root);
  const pointer = (path: string[]) => path.map((p) => '/' + p.replaceAll('~', '~0').replaceAll('/', '~1')).join('');
  const parentIsArray = exact.length > 0 && Array.isArray(at(exact.slice(0, -1)));
  const ownerKey = parentIsArray ? (exact.length >= 2 && !Array.isArray(at(exact.slice(0, -2))) ? exact[exact.length - 2] : undefined) : exact[exact.length - 1];
  if (ownerKey !== undefined && rules.crlfNames.has(ownerKey)) return true;
  return rules.crlfPointers.has(pointer(exact)) || (parentIsArray && rules.crlfPointers.has(pointer(exact.slice(0, -1))));
}

const sortKey = (f: Finding) => `${f.pointer}\u0001${f.rule}`;

describe('the JSON text scan', () => {
  it('finds exactly what a walk over the parsed value finds, on 3 000 random documents, however they are spaced', () => {
    for (let seed = 1; seed <= 3000; seed++) {
      const rand = random(seed);
      const doc = value(rand, 0);
      const text = seed % 3 === 0 ? JSON.stringify(doc, null, 2) : seed % 3 === 1 ? JSON.stringify(doc) : `\ufeff \n${JSON.stringify(doc, null, '\t')}\r\n`;
      const found: Finding[] = [];
      scanJson(text, rules, found);
      const want = expected(doc);
      const label = `seed ${seed}: ${text}`;
      if (want.length < MAX_FINDINGS) {
        expect(found.map(sortKey).sort(), label).toEqual(want.map(sortKey).sort());
      } else {
        expect(found, label).toHaveLength(MAX_FINDINGS);
      }
      // The byte pre-check never skips a document the scan would refuse.
      if (found.length > 0) expect(jsonMayOffend(Buffer.from(text), rules), label).toBe(true);
    }
  });

  it('sees a duplicate key JSON.parse drops, and keys written with escapes', () => {
    const found: Finding[] = [];
    scanJson('{"a":{"$gt":1},"a":1,"\\u0024where":"x","\\"$ne":1}', rules, found);
    expect(found.map((f) => f.pointer)).toEqual(['/body/a/$gt', '/body/$where']);
  });
});
