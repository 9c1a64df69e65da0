import { describe, expect, it } from 'vitest';
import { hasDuplicateKeys } from './json-text.js';

describe('hasDuplicateKeys', () => {
  it.each([
    ['{"a":1,"a":2}', true],
    ['{"a":{"password":"x"},"a":{}}', true],
    ['{"a":1,"\\u0061":2}', true],
    ['[{"a":1},{"a":2}]', false],
    ['{"a":{"a":1},"b":{"a":2}}', false],
    ['{"a":"\\"a\\":1,","b":"a"}', false],
    ['{"x":[{"k":1,"k":2}]}', true],
    ['\ufeff{"a":1,"b":{"c":[1,2,{"d":"\\\\"}]},"e":"\\\\\\""}', false],
    ['{}', false],
    ['"just a string"', false],
  ])('%s → %s', (text, expected) => {
    expect(JSON.parse(text.replace(/^\ufeff/, ''))).toBeDefined();
    expect(hasDuplicateKeys(text)).toBe(expected);
  });

  it('agrees with a parse that counts keys on random documents', () => {
    let seed = 7;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
    const keys = ['a', 'b', 'c', 'a"b', 'é', '\\', '\u0000x'];
    const build = (depth: number): string => {
      if (depth > 3 || rand(3) === 0) return JSON.stringify(rand(2) === 0 ? keys[rand(keys.length)] : rand(100));
      if (rand(2) === 0) return `[${Array.from({ length: rand(4) }, () => build(depth + 1)).join(',')}]`;
      return `{${Array.from({ length: rand(4) }, () => `${JSON.stringify(keys[rand(keys.length)])}:${build(depth + 1)}`).join(',')}}`;
    };
    const duplicates = (value: string): boolean => {
      // Reference: the keys of every object, found by a regular expression (the generated values
      // never hold a brace or a quote followed by a colon).
      let found = false;
      const stack: Set<string>[] = [];
      const re = /"((?:[^"\\]|\\.)*)"\s*:|[{}]/g;
      let m: RegExpExecArray | null;
      while ((m = re.exec(value)) !== null) {
        if (m[0] === '{') stack.push(new Set());
        else if (m[0] === '}') stack.pop();
        else {
          const key = JSON.parse(`"${m[1]}"`) as string;
          const top = stack[stack.length - 1]!;
          if (top.has(key)) found = true;
          top.add(key);
        }
      }
      return found;
    };
    for (let i = 0; i < 2000; i++) {
      const text = build(0);
      expect(hasDuplicateKeys(text), text).toBe(duplicates(text));
    }
  });
});
