import { firstHeader, type ScanResponse } from '../http.js';
import { severityRank, type Check, type Confidence, type Finding, type OwaspCategory, type ScanContext, type Severity } from '../types.js';
import { findingAt } from './inject.js';
import { banners, cardNumber, lineFrom, mask, passwordHash, privateKeys, sqlError, rawIndex, readableText, stackTrace, tokens } from './signatures.js';

/**
 * Sensitive data and verbose errors in answers. Sends nothing: it judges every answer the scan
 * received so far (endpoint discovery and every check before it, payload answers included — an
 * error a quote provokes is an error the server shows anyone), so it runs after the checks that
 * send. One finding per host and kind, the first answer that shows it as evidence, every secret
 * masked in the detail and the evidence.
 *
 * Data (passwords, hashes, cards) is judged in JSON values only, by the value's own format (and
 * for passwords the field's name); secrets of well-known formats and PEM private keys anywhere in
 * a body. Not judged: OpenAPI documents (examples are not data), a value the request itself
 * carried (an echo is not a leak), the scan's own credentials, and the access token a login
 * answers (JWTs are not a secret format here). Throttled answers (429, 503) are judged like any
 * other: this check compares nothing, and a verbose 503 page with a stack trace is still a leak.
 *
 * Every answer may be hostile (up to the body limit): the signatures run in linear time, and so
 * does the rest — a JSON value's place is looked for from the previous one's, not from the start.
 */

type Kind =
  | 'sensitive.password'
  | 'sensitive.hash'
  | 'sensitive.private-key'
  | 'sensitive.token'
  | 'sensitive.card'
  | 'errors.stack-trace'
  | 'errors.sql'
  | 'errors.framework-banner';

interface KindInfo {
  title: string;
  severity: Severity;
  confidence: Confidence;
  owasp: OwaspCategory;
  remediation: string;
}

const DATA_REMEDIATION = 'Return only the fields the client needs: an allowlist per answer (a response schema, a DTO), never the stored object as is.';
const ERROR_REMEDIATION =
  'Answer errors with a generic problem (status, title, a request id) and log the details on the server; run frameworks in production mode (no debug pages).';

const KINDS: Record<Kind, KindInfo> = {
  'sensitive.password': { title: 'Passwords in answers', severity: 'high', confidence: 'medium', owasp: 'API3:2023', remediation: `${DATA_REMEDIATION} Store passwords only as slow hashes (Argon2id), and return them never.` },
  'sensitive.hash': { title: 'Password hashes in answers', severity: 'medium', confidence: 'high', owasp: 'API3:2023', remediation: `${DATA_REMEDIATION} A leaked hash can be cracked offline: never return it, not even to administrators.` },
  'sensitive.private-key': { title: 'Private keys in answers', severity: 'high', confidence: 'high', owasp: 'API3:2023', remediation: `${DATA_REMEDIATION} Treat the key as compromised: replace it and revoke whatever it signed or protected.` },
  'sensitive.token': { title: 'Secrets (API keys, access tokens) in answers', severity: 'high', confidence: 'high', owasp: 'API3:2023', remediation: `${DATA_REMEDIATION} Revoke and rotate the exposed secrets; keep them in a secret store, out of data the API returns.` },
  'sensitive.card': { title: 'Card numbers in answers', severity: 'high', confidence: 'medium', owasp: 'API3:2023', remediation: `${DATA_REMEDIATION} Show at most the last four digits (PCI DSS 3.4); store card numbers only tokenised.` },
  'errors.stack-trace': { title: 'Stack traces in answers', severity: 'medium', confidence: 'high', owasp: 'API8:2023', remediation: ERROR_REMEDIATION },
  'errors.sql': { title: 'Database errors in answers', severity: 'medium', confidence: 'high', owasp: 'API8:2023', remediation: `${ERROR_REMEDIATION} A database message tells an attacker the engine, the schema and how a payload was parsed.` },
  'errors.framework-banner': { title: 'Framework debug or error pages', severity: 'low', confidence: 'high', owasp: 'API8:2023', remediation: `${ERROR_REMEDIATION} Replace default error pages; they name the software and its version.` },
};

interface Hit {
  kind: Kind;
  res: ScanResponse;
  /** What was seen, secrets masked (`AWS access key ID AKIA…WXYZ (20 characters) in $.integrations.aws`). */
  what: string;
  /** Where in the raw body it starts (for the evidence excerpt). */
  index: number;
  /** Raw-body spellings of the secret, each with its mask. */
  mask: [string, string][];
  severity: Severity;
  confidence?: Confidence;
}

/** Field names of passwords (lower case, without `_`/`-`): `password`, `dbPassword`, `smtp_passwd`… */
const PASSWORD_KEY = /^(?:user|admin|root|db|database|smtp|mail|ldap|plain|plaintext|cleartext|current|account|default|initial|temp|temporary)?(?:password|passwd|passwort|pwd|pass)$/;
/** Placeholders and field descriptions, not passwords (validation messages are prose: two spaces or more, also skipped). */
const NOT_A_PASSWORD = /^(?:null|none|nil|true|false|undefined|redacted|hidden|masked|secret|set|unset|filtered|\[filtered\]|\[redacted\]|n\/a|-|required|optional|invalid|missing|string|text|password|changed|expired)$/i;
/** Keys whose numbers are no card even when they pass Luhn: ids, times, quantities, phone numbers, other identifiers. */
const NOT_A_CARD_KEY = /(?:^|_)id$|Id$|ids$|uuid|guid|time|date|_at$|At$|epoch|version|seq|count|total|amount|price|size|phone|tel|mobile|fax|zip|postal|isbn|ean|gtin|upc|imei|iban|invoice|tracking|order/i;
const CARD_KEY = /card|(?:^|_)pan$|^pan|(?:^|_)cc(?:_|$)|ccnum|credit/i;

function isDocument(ctx: ScanContext, res: ScanResponse): boolean {
  if (ctx.document !== undefined && res.request.url === ctx.document.uri) return true;
  const head = res.body.slice(0, 4000);
  return /"(?:openapi|swagger)"\s*:\s*"[23]\./.test(head) || /^[ \t]*(?:openapi|swagger):[ \t]*["']?[23]\./m.test(head);
}

function ownSecrets(ctx: ScanContext): Set<string> {
  const own = new Set<string>();
  for (const id of [ctx.identities.a, ctx.identities.b]) {
    if (id === undefined) continue;
    for (const value of Object.values(id.headers)) {
      own.add(value);
      for (const part of value.split(/[\s;=]+/)) if (part.length >= 8) own.add(part);
    }
    if (id.token !== undefined) own.add(id.token);
  }
  for (const p of [ctx.login?.password, ctx.login?.passwordB]) if (p !== undefined) own.add(p);
  return own;
}

function requestText(res: ScanResponse): string {
  let url = res.request.url;
  try {
    url = decodeURIComponent(url);
  } catch {
    // keep it encoded
  }
  return [url, ...Object.values(res.request.headers), res.request.body ?? ''].join('\n');
}

/** How a string value is written in a JSON body: as is, JSON-escaped, and with `/` escaped (PHP's json_encode). */
function spellings(value: string): string[] {
  const json = JSON.stringify(value).slice(1, -1);
  return [...new Set([value, json, json.replaceAll('/', '\\/')])];
}

/** Where one of `forms` is in the body, looked for from `from` on first (JSON values come in the body's order), else 0. */
function indexIn(body: string, forms: readonly string[], from = 0): number {
  for (const start of from > 0 ? [from, 0] : [0]) {
    for (const f of forms) {
      const i = body.indexOf(f, start);
      if (i >= 0) return i;
    }
  }
  return 0;
}

function parsedJson(res: ScanResponse): unknown {
  if (res.truncated) return undefined;
  const type = (firstHeader(res.headers, 'content-type') ?? '').toLowerCase();
  if (!type.includes('json') && !/^\s*[[{]/.test(res.body)) return undefined;
  try {
    return JSON.parse(res.body);
  } catch {
    return undefined;
  }
}

/** Leaf values of a JSON document with their key and path (bounded: 5000 nodes, depth 16). */
function* leaves(node: unknown): Generator<{ key: string; path: string; value: string | number }> {
  const stack: { node: unknown; key: string; path: string; depth: number }[] = [{ node, key: '', path: '$', depth: 0 }];
  for (let seen = 0; stack.length > 0 && seen < 5000; seen++) {
    const { node: n, key, path, depth } = stack.pop()!;
    if (typeof n === 'string' || typeof n === 'number') yield { key, path, value: n };
    else if (n !== null && typeof n === 'object' && depth < 16) {
      const entries = Array.isArray(n) ? n.map((v, i) => [String(i), v] as const) : Object.entries(n);
      for (const [k, v] of entries.reverse()) stack.push({ node: v, key: Array.isArray(n) ? key : k, path: Array.isArray(n) ? `${path}[${k}]` : `${path}.${k}`, depth: depth + 1 });
    }
  }
}

function hitsOf(res: ScanResponse, own: ReadonlySet<string>): Hit[] {
  const hits: Hit[] = [];
  const sent = requestText(res);
  const excluded = (s: string) => own.has(s) || (s.length >= 4 && sent.includes(s));
  // Where the last JSON value was found: the next one is after it (each value looked for from 0 would make a body of many secrets quadratic).
  let cursor = 0;
  const secretHit = (kind: Kind, value: string, what: string, extra: Partial<Hit> = {}, at?: number) => {
    const forms = spellings(value);
    const index = at ?? (cursor = indexIn(res.body, forms, cursor));
    hits.push({ kind, res, what, index, mask: forms.map((f) => [f, mask(value)]), severity: KINDS[kind].severity, ...extra });
  };

  const json = parsedJson(res);
  if (json !== undefined) {
    for (const { key, path, value } of leaves(json)) {
      const text = String(value);
      if (excluded(text)) continue;
      if (typeof value === 'string') {
        const hash = passwordHash(value);
        if (hash !== undefined) {
          secretHit('sensitive.hash', value, `a ${hash} hash ${mask(value)} in ${path}`);
          continue;
        }
        const name = key.toLowerCase().replace(/[-_ ]/g, '');
        if (PASSWORD_KEY.test(name) && res.status < 400 && value.length >= 4 && value.length <= 128 && (value.match(/ /g) ?? []).length < 2 && !NOT_A_PASSWORD.test(value) && !/^[*•·xX#.-]+$/.test(value) && !value.includes('***') && !/^(?:\/|https?:\/\/)/.test(value)) {
          secretHit('sensitive.password', value, `"${key}": ${mask(value)} in ${path}`);
          continue;
        }
      }
      if (NOT_A_CARD_KEY.test(key) || (typeof value === 'number' && (!Number.isSafeInteger(value) || !CARD_KEY.test(key)))) continue;
      const scheme = cardNumber(text);
      if (scheme !== undefined) secretHit('sensitive.card', text, `a ${scheme} number ${mask(text)} in ${path}`, { confidence: CARD_KEY.test(key) ? 'high' : 'medium' });
    }
  }

  for (const m of privateKeys(res.body)) {
    if (excluded(m.text)) continue;
    const masked = `-----BEGIN ${m.label.slice(4)}----- … (${m.text.length} characters)`;
    hits.push({ kind: 'sensitive.private-key', res, what: `a ${m.label}`, index: m.index, mask: [[m.text, masked]], severity: 'high' });
  }
  for (const m of tokens(res.body)) if (!excluded(m.text)) secretHit('sensitive.token', m.text, `${m.label} ${mask(m.text)}`, {}, m.index);

  const text = readableText(res.body);
  const at = (t: string) => rawIndex(res.body, t);
  const trace = stackTrace(text);
  if (trace !== undefined) hits.push({ kind: 'errors.stack-trace', res, what: `a ${trace.label} stack trace (${lineFrom(text, trace.index + trace.text.length - trace.text.trimStart().length, 80)})`, index: at(trace.text.trim()), mask: [], severity: 'medium' });
  const sql = sqlError(text);
  if (sql !== undefined) hits.push({ kind: 'errors.sql', res, what: `a ${sql.label} error message (${lineFrom(text, sql.index, 80)})`, index: at(sql.text), mask: [], severity: 'medium' });
  for (const b of banners(text, res.status)) hits.push({ kind: 'errors.framework-banner', res, what: `${b.label} (${lineFrom(text, b.index, 80)})`, index: at(b.text), mask: [], severity: b.severity });
  return hits;
}

const where = (res: ScanResponse): string => `${res.request.method} ${new URL(res.request.url).pathname} (${res.status})`;

/** At most this many distinct things are named in one finding's detail. */
const MAX_LISTED = 3;

function findingOf(kind: Kind, hits: readonly Hit[], masks: ReadonlyMap<ScanResponse, [string, string][]>): Finding {
  const info = KINDS[kind];
  const top = hits.reduce((a, b) => (severityRank(b.severity) > severityRank(a.severity) ? b : a));
  // Each distinct thing once, where it was first seen, with how many other answers showed it.
  const distinct = new Map<string, { first: Hit; answers: Set<ScanResponse> }>();
  for (const h of hits) {
    const entry = distinct.get(h.what) ?? { first: h, answers: new Set() };
    entry.answers.add(h.res);
    distinct.set(h.what, entry);
  }
  const all = [...distinct.values()];
  const listed = all.slice(0, MAX_LISTED).map(({ first, answers }) => `${first.what} on ${where(first.res)}${answers.size > 1 ? ` and ${answers.size - 1} more answer${answers.size > 2 ? 's' : ''}` : ''}`);
  const more = all.length > MAX_LISTED ? `; and ${all.length - MAX_LISTED} more` : '';
  const confidence = hits.some((h) => h.confidence === 'high') ? 'high' : (hits.find((h) => h.confidence !== undefined)?.confidence ?? info.confidence);
  return findingAt('sensitive-data', top.res, {
    id: kind,
    title: kind === 'errors.framework-banner' ? `${info.title}: ${top.what.replace(/ \(.*$/, '')}` : info.title,
    severity: top.severity,
    confidence,
    owasp: info.owasp,
    detail: `${listed.join('; ')}${more}.`,
    remediation: info.remediation,
  }, undefined, { index: top.index, mask: masks.get(top.res) ?? [] });
}

export const sensitiveDataCheck: Check = {
  id: 'sensitive-data',
  title: 'Sensitive data and verbose errors',
  owasp: 'API3:2023',
  description:
    'Sends nothing: judges every answer received so far for passwords, password hashes, PEM private keys, well-known secret formats (AWS, GitHub, Slack, Stripe), card numbers (Luhn), ' +
    'stack traces, database errors and framework debug/error pages. One finding per host and kind, secrets masked.',
  async run(ctx) {
    const answers = [...new Set([...ctx.observed, ...ctx.http.history])];
    const own = ownSecrets(ctx);
    const byKey = new Map<string, { kind: Kind; hits: Hit[] }>();
    // Every secret of an answer is masked in its evidence, whichever finding shows it.
    const masks = new Map<ScanResponse, [string, string][]>();
    for (const res of answers) {
      if (isDocument(ctx, res)) continue;
      for (const hit of hitsOf(res, own)) {
        if (hit.mask.length > 0) {
          const list = masks.get(res) ?? [];
          masks.set(res, list);
          for (const m of hit.mask) list.push(m);
        }
        const key = `${new URL(res.request.url).host} ${hit.kind}`;
        const entry = byKey.get(key) ?? { kind: hit.kind, hits: [] };
        entry.hits.push(hit);
        byKey.set(key, entry);
      }
    }
    return [...byKey.values()].map(({ kind, hits }) => findingOf(kind, hits, masks));
  },
};
