/**
 * Scanners for values that look like secrets, precompiled and linear: a card-number scan over the
 * digits, and `indexOf` for the fixed prefixes of private keys, JWTs and cloud access keys. No
 * regular expressions run on answer text.
 */

export type SecretKind = 'card' | 'privateKey' | 'cloudKey' | 'jwt';

export interface Finding {
  readonly start: number;
  readonly end: number;
  readonly kind: SecretKind;
}

/** Shortest value any scanner can match (a 13-digit card number). */
export const MIN_SECRET_LENGTH = 13;

const isDigit = (c: number) => c >= 48 && c <= 57;
const isUpper = (c: number) => c >= 65 && c <= 90;
const isLower = (c: number) => c >= 97 && c <= 122;
const isAlnum = (c: number) => isDigit(c) || isUpper(c) || isLower(c);
const isUpperDigit = (c: number) => isDigit(c) || isUpper(c);
const isAlnumUnderscore = (c: number) => isAlnum(c) || c === 95;
const isAlnumDash = (c: number) => isAlnum(c) || c === 45;
const isBase64Url = (c: number) => isAlnum(c) || c === 45 || c === 95;

// ── card numbers ─────────────────────────────────────────────────────────────

/** The Luhn checksum over the digits of `s[start, end)` (separators skipped). */
export function luhn(s: string, start: number, end: number): boolean {
  let sum = 0;
  let double = false;
  for (let i = end - 1; i >= start; i--) {
    const c = s.charCodeAt(i);
    if (!isDigit(c)) continue;
    let d = c - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

/**
 * Issuer sanity: the major networks' first digits (Amex/Diners/JCB 3, Visa 4, Mastercard 51–55
 * and 2221–2720, Discover/UnionPay/Maestro 5–6). Numbers starting 0, 1, 7, 8, 9 are not cards
 * (millisecond timestamps start with 1).
 */
function plausibleIssuer(digits: string): boolean {
  const first = digits.charCodeAt(0) - 48;
  if (first >= 3 && first <= 6) return true;
  if (first !== 2) return false;
  const four = Number(digits.slice(0, 4));
  return four >= 2221 && four <= 2720;
}

/**
 * Card numbers: 13–19 digits, alone or grouped by single spaces or dashes in groups of 3 or more
 * (the last group may be shorter), not glued to letters or other digits, with a plausible issuer
 * and a valid Luhn checksum.
 */
function findCards(s: string, out: Finding[]): void {
  const n = s.length;
  let i = 0;
  while (i < n) {
    if (!isDigit(s.charCodeAt(i))) {
      i++;
      continue;
    }
    const start = i;
    let digits = 0;
    let group = 0;
    let grouped = true;
    let j = i;
    for (; j < n; j++) {
      const c = s.charCodeAt(j);
      if (isDigit(c)) {
        digits++;
        group++;
        continue;
      }
      if ((c === 32 || c === 45) && j + 1 < n && isDigit(s.charCodeAt(j + 1))) {
        if (group < 3) grouped = false;
        group = 0;
        continue;
      }
      break;
    }
    i = j;
    if (digits < 13 || digits > 19 || !grouped) continue;
    const before = start > 0 ? s.charCodeAt(start - 1) : 32;
    const after = j < n ? s.charCodeAt(j) : 32;
    if (isAlnum(before) || isAlnum(after)) continue;
    // Part of a decimal number (`0.4111…`, `4111….5`), not a sentence's full stop.
    if ((before === 46 && start > 1 && isDigit(s.charCodeAt(start - 2))) || (after === 46 && j + 1 < n && isDigit(s.charCodeAt(j + 1)))) continue;
    let plain = '';
    for (let k = start; k < j; k++) if (isDigit(s.charCodeAt(k))) plain += s[k];
    if (plausibleIssuer(plain) && luhn(s, start, j)) out.push({ start, end: j, kind: 'card' });
  }
}

/** `4111 1111 1111 1111` → `**** **** **** 1111`: the last four digits stay, as on receipts. */
export function maskCard(value: string): string {
  let digits = 0;
  for (let i = 0; i < value.length; i++) if (isDigit(value.charCodeAt(i))) digits++;
  let out = '';
  let seen = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (!isDigit(c)) out += value[i];
    else out += ++seen > digits - 4 ? value[i] : '*';
  }
  return out;
}

// ── PEM private keys ─────────────────────────────────────────────────────────

const PEM_BEGIN = '-----BEGIN ';

/** `-----BEGIN [RSA |EC |OPENSSH |ENCRYPTED ]PRIVATE KEY-----` through its END line (or the end of the value). */
function findPrivateKeys(s: string, out: Finding[]): void {
  let from = 0;
  for (;;) {
    const start = s.indexOf(PEM_BEGIN, from);
    if (start === -1) return;
    const labelStart = start + PEM_BEGIN.length;
    const close = s.indexOf('-----', labelStart);
    if (close === -1) return;
    const label = s.slice(labelStart, close);
    from = close + 5;
    if (label.length > 40 || !label.endsWith('PRIVATE KEY')) continue;
    const endLine = `-----END ${label}-----`;
    const endAt = s.indexOf(endLine, from);
    const end = endAt === -1 ? s.length : endAt + endLine.length;
    out.push({ start, end, kind: 'privateKey' });
    from = end;
  }
}

// ── JWTs ─────────────────────────────────────────────────────────────────────

/**
 * Three base64url segments (the last may be empty: `alg: none`) whose first is a JSON object with
 * an `alg` — `eyJ` is how every such header starts.
 */
function findJwts(s: string, out: Finding[]): void {
  let from = 0;
  const n = s.length;
  for (;;) {
    const start = s.indexOf('eyJ', from);
    if (start === -1) return;
    from = start + 3;
    if (start > 0 && isBase64Url(s.charCodeAt(start - 1))) continue;
    let i = start;
    while (i < n && isBase64Url(s.charCodeAt(i))) i++;
    const headerEnd = i;
    if (headerEnd - start < 10 || s.charCodeAt(i) !== 46) continue;
    i++;
    const payloadStart = i;
    while (i < n && isBase64Url(s.charCodeAt(i))) i++;
    if (i - payloadStart < 2 || s.charCodeAt(i) !== 46) continue;
    i++;
    while (i < n && isBase64Url(s.charCodeAt(i))) i++;
    if (!jwtHeader(s.slice(start, headerEnd))) continue;
    out.push({ start, end: i, kind: 'jwt' });
    from = i;
  }
}

function jwtHeader(segment: string): boolean {
  if (segment.length > 2048) return false;
  try {
    const header: unknown = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
    return header !== null && typeof header === 'object' && typeof (header as { alg?: unknown }).alg === 'string';
  } catch {
    return false;
  }
}

// ── cloud access keys ────────────────────────────────────────────────────────

interface KeyShape {
  /** Who issues it (documentation; findings are all `cloudKey`). */
  readonly issuer: string;
  readonly prefixes: readonly string[];
  readonly char: (c: number) => boolean;
  /** Characters after the prefix. */
  readonly min: number;
  readonly max: number;
}

/** The documented table (see README.md). A key must not be glued to a letter or digit on either side. */
export const CLOUD_KEYS: readonly KeyShape[] = [
  { issuer: 'AWS access key id', prefixes: ['AKIA', 'ASIA'], char: isUpperDigit, min: 16, max: 16 },
  { issuer: 'GitHub token', prefixes: ['ghp_', 'gho_', 'ghu_', 'ghs_', 'ghr_'], char: isAlnum, min: 36, max: 255 },
  { issuer: 'GitHub fine-grained token', prefixes: ['github_pat_'], char: isAlnumUnderscore, min: 22, max: 255 },
  { issuer: 'Slack token', prefixes: ['xoxb-', 'xoxa-', 'xoxp-', 'xoxr-', 'xoxs-'], char: isAlnumDash, min: 10, max: 255 },
  { issuer: 'Stripe live secret key', prefixes: ['sk_live_', 'rk_live_'], char: isAlnum, min: 16, max: 255 },
  { issuer: 'Google API key', prefixes: ['AIza'], char: isBase64Url, min: 35, max: 35 },
];

function findCloudKeys(s: string, out: Finding[]): void {
  const n = s.length;
  for (const shape of CLOUD_KEYS) {
    for (const prefix of shape.prefixes) {
      let from = 0;
      // End of the last run of key characters scanned: a candidate inside it ends there too, so
      // a text made of prefixes (`xoxb-xoxb-…`) is scanned once, not once per prefix.
      let knownTo = -1;
      let runEnds = false;
      for (;;) {
        const start = s.indexOf(prefix, from);
        if (start === -1) break;
        from = start + prefix.length;
        if (start > 0 && isAlnum(s.charCodeAt(start - 1))) continue;
        // Characters before knownTo are known key characters; with runEnds, knownTo ends the run.
        let i = from < knownTo ? knownTo : from;
        if (!(from < knownTo && runEnds)) {
          while (i < n && i - from <= shape.max && shape.char(s.charCodeAt(i))) i++;
          knownTo = i;
          runEnds = i - from <= shape.max;
        }
        const length = i - from;
        if (length < shape.min || length > shape.max) continue;
        // The key must end there (AWS ids are exactly 16 characters, not the start of a longer word).
        if (i < n && isAlnum(s.charCodeAt(i))) continue;
        out.push({ start, end: i, kind: 'cloudKey' });
        from = i;
      }
    }
  }
}

// ── all together ─────────────────────────────────────────────────────────────

export interface Kinds {
  readonly card: boolean;
  readonly privateKey: boolean;
  readonly cloudKey: boolean;
  readonly jwt: boolean;
}

/** Everything in `s` that looks like a secret of an enabled kind, in order, without overlaps. */
export function scan(s: string, kinds: Kinds): Finding[] | undefined {
  if (s.length < MIN_SECRET_LENGTH) return undefined;
  const found: Finding[] = [];
  if (kinds.privateKey) findPrivateKeys(s, found);
  if (kinds.cloudKey) findCloudKeys(s, found);
  if (kinds.jwt) findJwts(s, found);
  if (kinds.card) findCards(s, found);
  if (found.length === 0) return undefined;
  found.sort((a, b) => a.start - b.start || b.end - a.end);
  const kept: Finding[] = [];
  let end = -1;
  for (const f of found) {
    if (f.start < end) continue;
    kept.push(f);
    end = f.end;
  }
  return kept;
}

/** `s` with each finding masked: cards keep their last four digits, the rest become `[REDACTED:<kind>]`. */
export function mask(s: string, findings: readonly Finding[]): string {
  let out = '';
  let at = 0;
  for (const f of findings) {
    out += s.slice(at, f.start);
    out += f.kind === 'card' ? maskCard(s.slice(f.start, f.end)) : `[REDACTED:${f.kind}]`;
    at = f.end;
  }
  return out + s.slice(at);
}
