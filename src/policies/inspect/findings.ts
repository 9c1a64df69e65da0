/** What `inspect` found wrong with one input, as the problem body's `errors` items show it (plus the rule). */
export interface Finding {
  readonly rule: 'nosqlOperators' | 'nulBytes' | 'crlf' | 'pathTraversal';
  /** `/body/<json pointer>`, `/query/<name>`, `/path/<param>` or `/header/<name>`. */
  readonly pointer: string;
  /** A fixed sentence per rule and reason: never the offending value. */
  readonly detail: string;
}

/** Most findings listed in one answer; the scan stops there. */
export const MAX_FINDINGS = 10;

/** Longest key or name echoed in a pointer (longer ones are cut, ending in `…`). */
const MAX_SEGMENT = 128;

/**
 * One reference token of a pointer, RFC 6901-escaped (`~` → `~0`, `/` → `~1`). Keys and query
 * names come from the client and go into the problem body and the log: control characters
 * (the NUL or CR/LF that may be what was refused) become U+FFFD and long ones are cut, so a
 * pointer is always short and printable. `exact` skips that, for comparing with configured pointers.
 */
export function pointerSegment(token: string, exact = false): string {
  let out = token.length > MAX_SEGMENT && !exact ? token.slice(0, MAX_SEGMENT) : token;
  if (out.includes('~')) out = out.replaceAll('~', '~0');
  if (out.includes('/')) out = out.replaceAll('/', '~1');
  if (!exact) {
    let clean = true;
    for (let i = 0; i < out.length && clean; i++) {
      const c = out.charCodeAt(i);
      if (c < 0x20 || c === 0x7f) clean = false;
    }
    if (!clean) {
      let replaced = '';
      for (const char of out) {
        const c = char.charCodeAt(0);
        replaced += c < 0x20 || c === 0x7f ? '\ufffd' : char;
      }
      out = replaced;
    }
    if (token.length > MAX_SEGMENT) out += '…';
  }
  return out;
}

/** True if `s` holds a CR or an LF. */
export function hasCrlf(s: string): boolean {
  return s.includes('\n') || s.includes('\r');
}
