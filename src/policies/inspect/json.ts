import { NOSQL_OPERATORS } from './operators.js';
import { stringEnd } from '../../gateway/json-text.js';
import { MAX_FINDINGS, hasCrlf, pointerSegment, type Finding } from './findings.js';

/** What the JSON body is checked for, fixed at config load. */
export interface JsonRules {
  readonly nosqlOperators: boolean;
  readonly anyDollarKey: boolean;
  readonly nulBytes: boolean;
  /** Property names whose string values (or string items) crlf checks; empty when crlf is off. */
  readonly crlfNames: ReadonlySet<string>;
  /** JSON pointers (RFC 6901, as configured) whose string values (or string items) crlf checks. */
  readonly crlfPointers: ReadonlySet<string>;
}

const OPERATOR_DETAIL = 'A NoSQL query operator is not accepted as a key.';
const DOLLAR_DETAIL = 'A key starting with "$" is not accepted.';
const NUL_DETAIL = 'A NUL character is not accepted.';
const CRLF_DETAIL = 'A CR or LF character is not accepted in this field: it ends up in a header.';

/**
 * Whether the body's text can hold anything the rules refuse, by single-byte searches (memchr
 * fast): an operator key needs a `$` (or its escape `\u0024`, a backslash), and a NUL, CR or LF
 * inside a JSON string is always written as an escape (a raw one is invalid JSON, or whitespace
 * between tokens). Most bodies stop here.
 */
export function jsonMayOffend(bytes: Buffer, rules: JsonRules): boolean {
  const escapes = rules.nosqlOperators || rules.nulBytes || rules.crlfNames.size > 0 || rules.crlfPointers.size > 0;
  if (escapes && bytes.indexOf(0x5c /* \ */) !== -1) return true;
  return rules.nosqlOperators && bytes.indexOf(0x24 /* $ */) !== -1;
}

interface Frame {
  readonly array: boolean;
  /** The current key (objects) or index (arrays). */
  key: string;
  index: number;
  expectKey: boolean;
}

/**
 * Scans the text of a JSON body that has already parsed (so it is well-formed) and appends what
 * the rules refuse to `out`. The text, not the parsed value, is scanned: it is what the upstream
 * receives, and a duplicate key that `JSON.parse` dropped (the last one wins) may be the one an
 * upstream parser keeps. Iterative, one pass, an explicit stack: its cost is linear in the size
 * of the body, which `limits` (or `maxBody`) bounds, whatever the nesting.
 */
export function scanJson(text: string, rules: JsonRules, out: Finding[]): void {
  const stack: Frame[] = [];
  const n = text.length;
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  const checkCrlf = rules.crlfNames.size > 0 || rules.crlfPointers.size > 0;
  // The next backslash at or after i, kept as the scan moves on, so finding out whether a string
  // has escapes stays linear over the whole text.
  let backslash = -1;
  while (i < n && out.length < MAX_FINDINGS) {
    const c = text.charCodeAt(i);
    if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      stack.push({ array: c === 0x5b, key: '', index: 0, expectKey: c === 0x7b });
      i++;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
      i++;
    } else if (c === 0x2c /* , */) {
      const top = stack[stack.length - 1]!;
      if (top.array) top.index++;
      else top.expectKey = true;
      i++;
    } else if (c === 0x22 /* " */) {
      const end = stringEnd(text, i);
      if (backslash !== Infinity && backslash <= i) {
        backslash = text.indexOf('\\', i + 1);
        if (backslash === -1) backslash = Infinity;
      }
      const escaped = backslash < end;
      const value = escaped ? (JSON.parse(text.slice(i, end + 1)) as string) : text.slice(i + 1, end);
      i = end + 1;
      const top = stack[stack.length - 1];
      if (top !== undefined && !top.array && top.expectKey) {
        top.key = value;
        top.expectKey = false;
        checkKey(value, stack, rules, out);
      } else {
        checkString(value, stack, rules, checkCrlf, out);
      }
    } else {
      // Whitespace, ':', numbers, true, false, null.
      i++;
    }
  }
}

function checkKey(key: string, stack: Frame[], rules: JsonRules, out: Finding[]): void {
  if (rules.nosqlOperators && key.charCodeAt(0) === 0x24 /* $ */ && (rules.anyDollarKey || NOSQL_OPERATORS.has(key))) {
    out.push({ rule: 'nosqlOperators', pointer: pointerOf(stack), detail: NOSQL_OPERATORS.has(key) ? OPERATOR_DETAIL : DOLLAR_DETAIL });
  } else if (rules.nulBytes && key.includes('\0')) {
    out.push({ rule: 'nulBytes', pointer: pointerOf(stack), detail: NUL_DETAIL });
  }
}

function checkString(value: string, stack: Frame[], rules: JsonRules, checkCrlf: boolean, out: Finding[]): void {
  if (rules.nulBytes && value.includes('\0')) {
    out.push({ rule: 'nulBytes', pointer: pointerOf(stack), detail: NUL_DETAIL });
  } else if (checkCrlf && hasCrlf(value) && headerBound(stack, rules)) {
    out.push({ rule: 'crlf', pointer: pointerOf(stack), detail: CRLF_DETAIL });
  }
}

/** The string at the top of `stack` is a configured field's value, or an item of its array value. */
function headerBound(stack: Frame[], rules: JsonRules): boolean {
  const top = stack[stack.length - 1];
  if (top === undefined) return false;
  const owner = top.array ? stack[stack.length - 2] : top;
  if (owner !== undefined && !owner.array && rules.crlfNames.has(owner.key)) return true;
  if (rules.crlfPointers.size === 0) return false;
  const exact = exactPointer(stack, stack.length);
  return rules.crlfPointers.has(exact) || (top.array && rules.crlfPointers.has(exactPointer(stack, stack.length - 1)));
}

function exactPointer(stack: Frame[], depth: number): string {
  let pointer = '';
  for (let d = 0; d < depth; d++) {
    const frame = stack[d]!;
    pointer += '/' + (frame.array ? String(frame.index) : pointerSegment(frame.key, true));
  }
  return pointer;
}

/** Where the current key or value is, as the problem body shows it. */
function pointerOf(stack: Frame[]): string {
  let pointer = '/body';
  for (const frame of stack) pointer += '/' + (frame.array ? String(frame.index) : pointerSegment(frame.key));
  return pointer;
}
