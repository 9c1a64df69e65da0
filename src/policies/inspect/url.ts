import { NOSQL_OPERATORS } from './operators.js';
import { MAX_FINDINGS, hasCrlf, pointerSegment, type Finding } from './findings.js';

/** What the query and path parameters are checked for, fixed at config load. */
export interface UrlRules {
  readonly nosqlOperators: boolean;
  readonly anyDollarKey: boolean;
  readonly nulBytes: boolean;
  readonly crlf: boolean;
  readonly pathTraversal: boolean;
  /** With pathTraversal: a `/` or `\` in a single parameter decoded once is refused too. */
  readonly separators: boolean;
}

const NUL_DETAIL = 'A NUL character is not accepted.';
const CRLF_DETAIL = 'A CR or LF character is not accepted in a query or path value: it may end up in a header.';
const CRLF_FIELD_DETAIL = 'A CR or LF character is not accepted in this field: it ends up in a header.';
const OPERATOR_DETAIL = 'A NoSQL query operator is not accepted in a parameter name.';
const DOLLAR_DETAIL = 'A parameter name segment starting with "$" is not accepted.';
const SEPARATOR_DETAIL = 'A path parameter may not hold "/" or "\\".';
const DOT_DETAIL = 'A path parameter may not be a dot segment ("." or "..").';
const OVERLONG_DETAIL = 'A path parameter may not hold an overlong UTF-8 sequence.';
const TWICE = ' (found after decoding it twice)';

const hex = (c: number): number => (c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x41 && c <= 0x46 ? c - 0x37 : c >= 0x61 && c <= 0x66 ? c - 0x57 : -1);

/**
 * Decodes `%XX` escapes once, as qs, Express and most frameworks do (`+` is a space when `plus`):
 * a run of escapes is read as UTF-8 (invalid sequences become U+FFFD), a `%` not followed by two
 * hex digits stays as it is. `overlong` tells whether an escaped run held an overlong UTF-8 form
 * (`%c0%ae` is `.` to a lenient decoder, `%c0%af` is `/`), which no valid text has.
 */
export function percentDecode(s: string, plus: boolean): { text: string; overlong: boolean } {
  let text = '';
  let overlong = false;
  let i = 0;
  let from = 0;
  const n = s.length;
  while (i < n) {
    const c = s.charCodeAt(i);
    if (c === 0x2b /* + */ && plus) {
      text += s.slice(from, i) + ' ';
      from = ++i;
    } else if (c === 0x25 /* % */ && i + 2 < n && hex(s.charCodeAt(i + 1)) >= 0 && hex(s.charCodeAt(i + 2)) >= 0) {
      text += s.slice(from, i);
      const bytes: number[] = [];
      while (i + 2 < n && s.charCodeAt(i) === 0x25 && hex(s.charCodeAt(i + 1)) >= 0 && hex(s.charCodeAt(i + 2)) >= 0) {
        bytes.push(hex(s.charCodeAt(i + 1)) * 16 + hex(s.charCodeAt(i + 2)));
        i += 3;
      }
      if (!overlong) overlong = hasOverlong(bytes);
      text += Buffer.from(bytes).toString('utf8');
      from = i;
    } else {
      i++;
    }
  }
  return { text: from === 0 ? s : text + s.slice(from), overlong };
}

/** An overlong UTF-8 lead: C0/C1 + continuation (2 bytes), E0 + 80–9F (3 bytes), F0 + 80–8F (4 bytes). */
function hasOverlong(bytes: readonly number[]): boolean {
  for (let i = 0; i + 1 < bytes.length; i++) {
    const lead = bytes[i]!;
    const next = bytes[i + 1]!;
    if ((lead === 0xc0 || lead === 0xc1) && next >= 0x80 && next <= 0xbf) return true;
    if (lead === 0xe0 && next >= 0x80 && next <= 0x9f) return true;
    if (lead === 0xf0 && next >= 0x80 && next <= 0x8f) return true;
  }
  return false;
}

/**
 * Checks each `name=value` pair of the raw query (`?` included), split on `&` and decoded once as
 * qs does. Names are cut into segments at `[`, `]` and `.` (`user[$ne]`, `a[b][$gt]`, `a.$gt`, as
 * qs parses them, with or without `allowDots`), each checked against the operator list.
 */
export function checkQuery(query: string, rules: UrlRules, out: Finding[]): void {
  checkPairs(query, 1, '/query/', rules, undefined, out);
}

/**
 * The same for an `application/x-www-form-urlencoded` body (what qs parses for `req.body`), with
 * `/body/<name>` pointers. Form values are free text (a textarea may hold newlines): CR and LF
 * are refused only in the fields `crlfNames` lists, matched by whole name.
 */
export function checkForm(body: string, rules: UrlRules, crlfNames: ReadonlySet<string>, out: Finding[]): void {
  checkPairs(body, 0, '/body/', rules, crlfNames, out);
}

function checkPairs(text: string, from: number, prefix: string, rules: UrlRules, crlfNames: ReadonlySet<string> | undefined, out: Finding[]): void {
  let start = from;
  const n = text.length;
  while (start < n && out.length < MAX_FINDINGS) {
    let end = text.indexOf('&', start);
    if (end === -1) end = n;
    if (end > start) checkPair(text.slice(start, end), prefix, rules, crlfNames, out);
    start = end + 1;
  }
}

function checkPair(pair: string, prefix: string, rules: UrlRules, crlfNames: ReadonlySet<string> | undefined, out: Finding[]): void {
  const eq = pair.indexOf('=');
  const rawName = eq === -1 ? pair : pair.slice(0, eq);
  const rawValue = eq === -1 ? '' : pair.slice(eq + 1);
  const name = needsDecoding(rawName) ? percentDecode(rawName, true).text : rawName;
  const value = needsDecoding(rawValue) ? percentDecode(rawValue, true).text : rawValue;
  const found = (rule: Finding['rule'], detail: string) => out.push({ rule, pointer: prefix + pointerSegment(name), detail });
  const crlf = crlfNames === undefined ? rules.crlf : crlfNames.has(name);
  if (rules.nulBytes && (name.includes('\0') || value.includes('\0'))) found('nulBytes', NUL_DETAIL);
  else if (crlf && (hasCrlf(name) || hasCrlf(value))) found('crlf', crlfNames === undefined ? CRLF_DETAIL : CRLF_FIELD_DETAIL);
  else if (rules.nosqlOperators && name.includes('$')) {
    const operator = operatorSegment(name, rules.anyDollarKey);
    if (operator !== undefined) found('nosqlOperators', operator ? OPERATOR_DETAIL : DOLLAR_DETAIL);
  }
}

/** true: a segment of the name is a listed operator; false: one starts with `$` (anyDollarKey); else undefined. */
function operatorSegment(name: string, anyDollarKey: boolean): boolean | undefined {
  let dollar = false;
  let start = 0;
  for (let i = 0; i <= name.length; i++) {
    const c = i === name.length ? -1 : name.charCodeAt(i);
    if (c === -1 || c === 0x5b /* [ */ || c === 0x5d /* ] */ || c === 0x2e /* . */) {
      if (name.charCodeAt(start) === 0x24 /* $ */ && start < i) {
        if (NOSQL_OPERATORS.has(name.slice(start, i))) return true;
        dollar = true;
      }
      start = i + 1;
    }
  }
  return dollar && anyDollarKey ? false : undefined;
}

function needsDecoding(s: string): boolean {
  return s.includes('%') || s.includes('+');
}

/**
 * Checks one path parameter, as the router decoded it (once) and, when it still holds an escape,
 * decoded a second time: an upstream or a file API that decodes again must not find a separator,
 * a dot segment, a NUL or a CR/LF there either. `wildcard` is the `*` parameter, which spans
 * segments: `/` is expected in it, dot segments are not. A single parameter may hold an encoded
 * `/` or `\` as routed unless `separators` says otherwise, never one decoded twice.
 */
export function checkParam(name: string, value: string, wildcard: boolean, rules: UrlRules, out: Finding[]): void {
  const routed = separatorCount(value);
  let problem = paramProblem(value, false, routed, wildcard || !rules.separators ? routed : 0, rules);
  if (problem === undefined && value.includes('%')) {
    const twice = percentDecode(value, false);
    // Separators the second decoding brings out are refused; those already there were judged above.
    problem = paramProblem(twice.text, twice.overlong, separatorCount(twice.text), wildcard ? Infinity : routed, rules);
    if (problem !== undefined) problem = { rule: problem.rule, detail: problem.detail + TWICE };
  }
  if (problem !== undefined) out.push({ rule: problem.rule, pointer: '/path/' + pointerSegment(name), detail: problem.detail });
}

function paramProblem(text: string, overlong: boolean, separators: number, allowed: number, rules: UrlRules): Omit<Finding, 'pointer'> | undefined {
  const nul = text.includes('\0');
  if (nul && rules.nulBytes) return { rule: 'nulBytes', detail: NUL_DETAIL };
  if (rules.crlf && hasCrlf(text)) return { rule: 'crlf', detail: CRLF_DETAIL };
  if (!rules.pathTraversal) return undefined;
  // NUL truncates file names in C-based file APIs: part of path traversal even with nulBytes off.
  if (nul) return { rule: 'pathTraversal', detail: NUL_DETAIL };
  if (overlong) return { rule: 'pathTraversal', detail: OVERLONG_DETAIL };
  if (separators > allowed) return { rule: 'pathTraversal', detail: SEPARATOR_DETAIL };
  if (text.includes('.') && hasDotSegment(text, separators > 0)) return { rule: 'pathTraversal', detail: DOT_DETAIL };
  return undefined;
}

function separatorCount(text: string): number {
  let n = 0;
  for (let i = text.indexOf('/'); i !== -1; i = text.indexOf('/', i + 1)) n++;
  for (let i = text.indexOf('\\'); i !== -1; i = text.indexOf('\\', i + 1)) n++;
  return n;
}

/** `.` or `..` as a whole segment (split at `/` and `\` when `split`), also before a `;parameter` (Tomcat's `..;`). */
function hasDotSegment(text: string, split: boolean): boolean {
  let start = 0;
  let semicolon = -1;
  const n = text.length;
  for (let i = 0; i <= n; i++) {
    const c = i === n ? -1 : text.charCodeAt(i);
    if (c === 0x3b /* ; */ && semicolon === -1) semicolon = i;
    else if (c === -1 || (split && (c === 0x2f || c === 0x5c))) {
      const length = (semicolon === -1 ? i : semicolon) - start;
      if ((length === 1 || length === 2) && text.charCodeAt(start) === 0x2e && (length === 1 || text.charCodeAt(start + 1) === 0x2e)) return true;
      start = i + 1;
      semicolon = -1;
    }
  }
  return false;
}
