import { describe, expect, it } from 'vitest';
import { checkParam, checkQuery, percentDecode, type UrlRules } from './url.js';
import type { Finding } from './findings.js';

const all: UrlRules = { nosqlOperators: true, anyDollarKey: false, nulBytes: true, crlf: true, pathTraversal: true, separators: false };

describe('percentDecode', () => {
  it('decodes once, leaves broken escapes alone, reads runs of escapes as UTF-8', () => {
    for (const [input, plus, text] of [
      ['a%20b', false, 'a b'],
      ['a+b', true, 'a b'],
      ['a+b', false, 'a+b'],
      ['%', false, '%'],
      ['%4', false, '%4'],
      ['%zz%41', false, '%zzA'],
      ['100%', false, '100%'],
      ['%252e', false, '%2e'],
      ['caf%C3%A9', false, 'café'],
      ['%E9', false, '\ufffd'],
      ['x%00y', false, 'x\u0000y'],
      ['日本%20', false, '日本 '],
    ] as const) {
      expect(percentDecode(input, plus), input).toEqual({ text, overlong: false });
    }
  });

  it('tells an overlong UTF-8 form from valid text', () => {
    for (const overlong of ['%c0%ae', '%C0%AF', '%c1%9c', '%e0%80%ae', '%f0%80%80%ae', 'a%c0%80']) expect(percentDecode(overlong, false).overlong, overlong).toBe(true);
    for (const valid of ['%c3%a9', '%e0%a4%85', '%f0%9f%8e%89', '%c0', '%c0x%ae', '%ae']) expect(percentDecode(valid, false).overlong, valid).toBe(false);
  });
});

describe('query and path parameter checks', () => {
  const query = (q: string, rules = all) => {
    const out: Finding[] = [];
    checkQuery(q, rules, out);
    return out.map((f) => `${f.rule} ${f.pointer}`);
  };
  const param = (value: string, wildcard = false, rules = all) => {
    const out: Finding[] = [];
    checkParam(wildcard ? '*' : 'id', value, wildcard, rules, out);
    return out.map((f) => f.rule);
  };

  it('cuts query names at brackets and dots, and finds each problem once per pair', () => {
    expect(query('?a=1&&b[c][$in]=2&=x&$or&d.$lt=3&e=%00&f%0a=1')).toEqual([
      'nosqlOperators /query/b[c][$in]',
      'nosqlOperators /query/$or',
      'nosqlOperators /query/d.$lt',
      'nulBytes /query/e',
      'crlf /query/f\ufffd',
    ]);
    expect(query('?$ne[$ne]=%00')).toEqual(['nulBytes /query/$ne[$ne]']);
    expect(query('?a[$x]=1&$=2&[]=3&a$=4', { ...all, anyDollarKey: true })).toEqual(['nosqlOperators /query/a[$x]', 'nosqlOperators /query/$']);
    expect(query('?' + 'a=%00&'.repeat(1000))).toHaveLength(10);
  });

  it('judges a parameter as routed and decoded once more', () => {
    // As routed (the router decoded it once).
    expect(param('a\u0000b')).toEqual(['nulBytes']);
    expect(param('a\r\nb')).toEqual(['crlf']);
    expect(param('..')).toEqual(['pathTraversal']);
    expect(param('.;x')).toEqual(['pathTraversal']);
    expect(param('a/b')).toEqual([]);
    expect(param('a/b', false, { ...all, separators: true })).toEqual(['pathTraversal']);
    expect(param('a/../b', true)).toEqual(['pathTraversal']);
    expect(param('a\\..\\b', true)).toEqual(['pathTraversal']);
    expect(param('a/b/c.d', true)).toEqual([]);
    // Decoded once more.
    for (const twice of ['%2e%2e', '%2E', '%2e%2e;x', 'a%2fb', 'a%5Cb', '%00', '%0d', '%c0%ae']) expect(param(twice), twice).toHaveLength(1);
    expect(param('x/%2e%2e/y', true)).toEqual(['pathTraversal']);
    expect(param('x/%2fy', true)).toEqual([]);
    for (const fine of ['%20', '%zz', '100%', 'a..b', '...', '%2e%2e%2e', 'caf%C3%A9']) expect(param(fine), fine).toEqual([]);
    // Each rule off lets its own finding through, and only that one.
    expect(param('%0d', false, { ...all, crlf: false })).toEqual([]);
    expect(param('%00', false, { ...all, nulBytes: false })).toEqual(['pathTraversal']);
    expect(param('%00', false, { ...all, nulBytes: false, pathTraversal: false })).toEqual([]);
    expect(param('%2e%2e', false, { ...all, pathTraversal: false })).toEqual([]);
  });
});
