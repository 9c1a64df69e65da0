/**
 * Where the JSON string starting at `start` (its opening quote) ends: the first quote not escaped
 * by an odd run of backslashes. The text must be well-formed JSON (it has parsed).
 */
export function stringEnd(text: string, start: number): number {
  let end = text.indexOf('"', start + 1);
  for (;;) {
    let b = end - 1;
    while (text.charCodeAt(b) === 0x5c) b--;
    if ((end - 1 - b) % 2 === 0) return end;
    end = text.indexOf('"', end + 1);
  }
}

/**
 * Whether the text of a JSON document that has already parsed (so it is well-formed) repeats a
 * key within one object. `JSON.parse` keeps the last of them silently, while some parsers keep
 * the first: the gateway would check one value and the other side use another. Iterative, one
 * pass, an explicit stack (the same scan as the inspect policy's): linear in the text, whatever
 * the nesting. Keys are compared decoded (`"a"` and `"\u0061"` are one key).
 */
export function hasDuplicateKeys(text: string): boolean {
  // For each open object, the keys seen so far and whether a key comes next; null for arrays.
  const stack: ({ keys: Set<string> | undefined; expectKey: boolean } | null)[] = [];
  const n = text.length;
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  let backslash = -1;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 0x7b /* { */) {
      stack.push({ keys: undefined, expectKey: true });
      i++;
    } else if (c === 0x5b /* [ */) {
      stack.push(null);
      i++;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
      i++;
    } else if (c === 0x2c /* , */) {
      const top = stack[stack.length - 1];
      if (top !== null && top !== undefined) top.expectKey = true;
      i++;
    } else if (c === 0x22 /* " */) {
      const end = stringEnd(text, i);
      const top = stack[stack.length - 1];
      if (top !== null && top !== undefined && top.expectKey) {
        if (backslash !== Infinity && backslash <= i) {
          backslash = text.indexOf('\\', i + 1);
          if (backslash === -1) backslash = Infinity;
        }
        const key = backslash < end ? (JSON.parse(text.slice(i, end + 1)) as string) : text.slice(i + 1, end);
        top.keys ??= new Set();
        if (top.keys.has(key)) return true;
        top.keys.add(key);
        top.expectKey = false;
      }
      i = end + 1;
    } else {
      // Whitespace, ':', numbers, true, false, null.
      i++;
    }
  }
  return false;
}

/** A name as one JSON Pointer reference token (RFC 6901): `~` → `~0`, `/` → `~1`. */
export function escapePointer(name: string): string {
  return name.replaceAll('~', '~0').replaceAll('/', '~1');
}
