import type { ScanResponse } from './http.js';
import type { Finding } from './types.js';

/** Headers whose values are credentials: shown masked in every report. */
const SECRET_HEADERS = new Set(['authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'x-api-key']);
const MAX_EXCERPT = 2000;
const MAX_BODY = 500;

/** `Bearer eyJhbGciOi…` → `Bearer ****`: the scheme stays readable, the secret does not. */
export function maskHeader(name: string, value: string): string {
  if (!SECRET_HEADERS.has(name.toLowerCase())) return value;
  const space = value.indexOf(' ');
  if (name.toLowerCase() === 'authorization' || name.toLowerCase() === 'proxy-authorization') return space > 0 ? `${value.slice(0, space)} ****` : '****';
  return value.replace(/=([^;]*)/g, '=****');
}

/** Query parameters that carry credentials (a token sent in the URL, as the authentication check tries). */
const SECRET_PARAMETERS = new Set(['access_token', 'token', 'jwt', 'id_token', 'refresh_token', 'api_key', 'apikey']);

/** The URL as text with the values of credential query parameters masked (`?access_token=****`), for logs. */
export function maskUrl(url: URL): string {
  if (![...url.searchParams.keys()].some((k) => SECRET_PARAMETERS.has(k.toLowerCase()))) return url.href;
  const masked = new URL(url);
  for (const key of new Set(url.searchParams.keys())) if (SECRET_PARAMETERS.has(key.toLowerCase())) masked.searchParams.set(key, '****');
  return masked.href;
}

function bounded(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length - max} more characters)`;
}

/** The request and response of one exchange as HTTP/1.1-style excerpts, bounded, credentials masked. */
export function evidenceOf(res: ScanResponse): { request: string; response: string } {
  const url = new URL(maskUrl(new URL(res.request.url)));
  const reqLines = [`${res.request.method} ${url.pathname}${url.search} HTTP/1.1`, `host: ${url.host}`];
  for (const [name, value] of Object.entries(res.request.headers)) reqLines.push(`${name}: ${maskHeader(name, value)}`);
  if (res.request.body !== undefined) reqLines.push('', bounded(res.request.body, MAX_BODY));
  const resLines = [`HTTP/1.1 ${res.status}`];
  for (const [name, value] of Object.entries(res.headers)) {
    for (const v of Array.isArray(value) ? value : [value]) if (v !== undefined) resLines.push(`${name}: ${maskHeader(name, v)}`);
  }
  if (res.body !== '') resLines.push('', bounded(res.body, MAX_BODY));
  return { request: bounded(reqLines.join('\n'), MAX_EXCERPT), response: bounded(resLines.join('\n'), MAX_EXCERPT) };
}

/** Secrets shorter than this are not searched for in reports (they would mask ordinary words). */
const MIN_SECRET = 6;

/**
 * The scan's own secrets — its callers' credentials (`--auth` header values, tokens, `--password`)
 * and the tokens its logins were answered with — masked wherever they appear in a finding: a
 * header the fixed list above does not know (`--auth 'X-Auth-Token: …'`), a login exchange shown
 * as evidence, a token sent in a query string, an answer that echoes a credential. Each secret is
 * looked for as sent, URL-encoded and JSON-escaped.
 */
export function redactFindings(findings: Finding[], secrets: Iterable<string>): void {
  const forms = new Set<string>();
  for (const secret of secrets) {
    if (secret.length < MIN_SECRET) continue;
    forms.add(secret);
    forms.add(encodeURIComponent(secret));
    forms.add(JSON.stringify(secret).slice(1, -1));
  }
  // Longest first: a token inside a header value is replaced with the value, not left half-masked.
  const ordered = [...forms].sort((a, b) => b.length - a.length);
  const mask = (text: string): string => {
    let out = text;
    for (const form of ordered) if (out.includes(form)) out = out.split(form).join('****');
    return out;
  };
  for (const f of findings) {
    f.location.url = mask(maskUrl(new URL(f.location.url)));
    f.evidence = { request: mask(f.evidence.request), response: mask(f.evidence.response) };
    f.detail = mask(f.detail);
    f.title = mask(f.title);
  }
}
