import { randomBytes, randomInt } from 'node:crypto';
import { firstHeader, type ScanResponse } from '../http.js';
import { isAuthRefusal } from '../identity.js';
import { propertiesOf } from '../openapi.js';
import { isThrottled } from '../throttle.js';
import type { Endpoint, Finding, ScanContext } from '../types.js';

/**
 * What the authentication, JWT, user-enumeration and rate-limit checks share: the baseline (an
 * endpoint that accepts caller A and refuses an anonymous caller, found once per scan), the login
 * and logout operations, answers compared after normalisation, and user names nobody has.
 */

/** Headers that carry credentials: a request without any of them is anonymous. */
const CREDENTIAL_HEADERS = ['authorization', 'proxy-authorization', 'cookie', 'x-api-key'];

export function isSuccess(res: ScanResponse): boolean {
  return res.status >= 200 && res.status < 300;
}

/** An HTML page (a front end's catch-all, a login form): never taken as an API's answer. */
export function isHtml(res: ScanResponse): boolean {
  return /html/i.test(firstHeader(res.headers, 'content-type') ?? '');
}

/** A 2XX API answer (not an HTML page, and not throttled: a 2XX with Retry-After decides nothing). */
export function isApiSuccess(res: ScanResponse): boolean {
  return isSuccess(res) && !isHtml(res) && !isThrottled(res);
}

export function isAnonymous(req: ScanResponse['request']): boolean {
  return !Object.keys(req.headers).some((h) => CREDENTIAL_HEADERS.includes(h.toLowerCase()));
}

/** The answer to an anonymous `GET url` some check already received (not a throttled one), else one sent now. */
export async function anonymousGet(ctx: ScanContext, url: URL): Promise<ScanResponse> {
  const seen = ctx.http.history.find((r) => r.request.method === 'GET' && r.request.url === url.href && isAnonymous(r.request) && !isThrottled(r));
  return seen ?? ctx.http.send({ url, headers: { accept: 'application/json' } });
}

/** A value of the schema's type (what a body needs to get past type checks). */
export function sampleJson(name: string, schema: Record<string, unknown> | undefined): unknown {
  const given = schema?.example ?? schema?.default ?? (Array.isArray(schema?.enum) ? (schema.enum as unknown[])[0] : undefined);
  if (given !== undefined) return given;
  const type = Array.isArray(schema?.type) ? (schema.type as string[]).find((t) => t !== 'null') : (schema?.type as string | undefined);
  if (type === 'integer' || type === 'number') return Math.max(1, Number(schema?.minimum ?? 1));
  if (type === 'boolean') return true;
  if (type === 'array') return [];
  if (type === 'object') return {};
  if (schema?.format === 'email') return 'scan@example.com';
  const min = Number(schema?.minLength ?? 0);
  return 'rampart-scan'.padEnd(Math.min(Math.max(min, 12), 64), 'x');
}

/** A JSON body with the required properties of the operation's request schema. */
export function sampleBody(endpoint: Endpoint, values: Record<string, unknown> = {}): string {
  const schema = endpoint.requestBody?.schema;
  const props = propertiesOf(schema);
  const required = Array.isArray(schema?.required) ? (schema.required as string[]) : [];
  const body: Record<string, unknown> = {};
  for (const name of required) body[name] = sampleJson(name, props[name]);
  return JSON.stringify({ ...body, ...values });
}

// ---------------------------------------------------------------------------------------------
// The baseline

export interface Baseline {
  endpoint: Endpoint;
  /** Caller A's answer: 2XX. */
  accepted: ScanResponse;
  /** The anonymous answer: 401, 403 or a redirect to a login page. */
  anonymous: ScanResponse;
  /** With A's bearer token replaced by a string that is no token at all (only when A has one). */
  garbage?: ScanResponse | undefined;
}

/** A bearer value no server can take for a token. */
export const GARBAGE_TOKEN = 'rampart-scan-not-a-token';
/** Endpoints tried for the baseline, at most (each costs one to three requests). */
export const MAX_BASELINE_CANDIDATES = 4;

const baselines = new WeakMap<ScanContext, Promise<Baseline | undefined>>();

/**
 * An endpoint that accepts caller A (2XX) and refuses an anonymous caller, with the answer to a
 * garbage bearer token: what every forged-token probe is compared with. Found once per scan (the
 * checks share it), among GET endpoints the document says need credentials, then those an
 * anonymous request was refused on, then the "current user" paths next to the login.
 */
export function baselineOf(ctx: ScanContext): Promise<Baseline | undefined> {
  let found = baselines.get(ctx);
  if (found === undefined) {
    found = findBaseline(ctx);
    baselines.set(ctx, found);
  }
  return found;
}

function baselineCandidates(ctx: ScanContext): Endpoint[] {
  const gets = ctx.endpoints.filter((e) => e.method === 'GET');
  // Path parameters are filled with sample values that rarely name an existing object: last.
  const plainFirst = (list: Endpoint[]) => [...list.filter((e) => !e.template.includes('{')), ...list.filter((e) => e.template.includes('{'))];
  const documented = plainFirst(gets.filter((e) => e.requiresAuth === true));
  const refused = gets.filter((e) => e.requiresAuth !== true && ctx.http.history.some((r) => r.request.url === e.url.href && r.request.method === 'GET' && isAnonymous(r.request) && isAuthRefusal(r.status, r.headers)));
  const guessed = mePathsNear(ctx).map((url): Endpoint => ({ method: 'GET', url, template: url.pathname, from: 'crawl', parameters: [] }));
  const seen = new Set<string>();
  return [...documented, ...refused, ...guessed].filter((e) => {
    if (seen.has(e.url.href)) return false;
    seen.add(e.url.href);
    return true;
  });
}

/** `me`, `../me`, `../users/me` next to the login path (`/api/v1/auth/login` → `/api/v1/auth/me`, `/api/v1/me`, `/api/v1/users/me`). */
function mePathsNear(ctx: ScanContext): URL[] {
  if (ctx.login === undefined) return [];
  const dir = ctx.login.url.pathname.replace(/\/[^/]*$/, '');
  const parent = dir.replace(/\/[^/]*$/, '');
  return [`${dir}/me`, `${parent}/me`, `${parent}/users/me`].map((p) => new URL(p, ctx.target.origin));
}

async function findBaseline(ctx: ScanContext): Promise<Baseline | undefined> {
  const a = ctx.identities.a;
  if (a === undefined) return undefined;
  for (const endpoint of baselineCandidates(ctx).slice(0, MAX_BASELINE_CANDIDATES)) {
    const accepted = await ctx.http.send({ url: endpoint.url, headers: { accept: 'application/json', ...a.headers } });
    if (!isApiSuccess(accepted)) continue;
    const anonymous = await anonymousGet(ctx, endpoint.url);
    if (isThrottled(anonymous) || !isAuthRefusal(anonymous.status, anonymous.headers)) continue;
    const garbage = a.token === undefined ? undefined : await ctx.http.send({ url: endpoint.url, headers: { accept: 'application/json', authorization: `Bearer ${GARBAGE_TOKEN}` } });
    return { endpoint, accepted, anonymous, garbage };
  }
  return undefined;
}

/** A token was refused: 400 (malformed), 401, 403 or a redirect to a login page — and not throttled (a 401 with Retry-After is a limiter's). */
export function isRefusal(res: ScanResponse): boolean {
  return !isThrottled(res) && (res.status === 400 || isAuthRefusal(res.status, res.headers));
}

export const NO_BASELINE =
  'no decision on forged credentials: no endpoint was found that accepts caller A (2XX) and refuses an anonymous caller (401/403) — pass --openapi with operations that declare security';

// ---------------------------------------------------------------------------------------------
// Login and logout

export interface LoginOperation {
  url: URL;
  userField: string;
  passwordField: string;
  endpoint?: Endpoint | undefined;
}

const LOGIN_PATH = /(^|[/_-])(log-?in|sign-?in|authenticate)$/i;
const LOGIN_ID = /^(log-?in|sign-?in|authenticate)/i;
const PASSWORD_FIELD = /^(password|passwd|pass|pwd)$/i;

/** The login: `--login`'s, else a documented anonymous POST named like one whose body has a password. */
export function loginOperation(ctx: ScanContext): LoginOperation | undefined {
  if (ctx.login !== undefined) {
    const endpoint = ctx.endpoints.find((e) => e.method === 'POST' && e.url.pathname === ctx.login!.url.pathname);
    return { url: ctx.login.url, userField: ctx.login.userField, passwordField: 'password', endpoint };
  }
  for (const e of ctx.endpoints) {
    if (e.method !== 'POST' || e.requiresAuth === true) continue;
    if (!LOGIN_PATH.test(e.url.pathname) && !LOGIN_ID.test(e.operationId ?? '')) continue;
    const fields = Object.keys(propertiesOf(e.requestBody?.schema));
    const passwordField = fields.find((f) => PASSWORD_FIELD.test(f));
    const userField = ['email', 'username', 'user', 'login', 'name'].find((f) => fields.includes(f));
    if (passwordField !== undefined && userField !== undefined) return { url: e.url, userField, passwordField, endpoint: e };
  }
  return undefined;
}

/** The documented logout (POST, `logout`/`signout`, not "everywhere"), else `logout` next to the login path. */
export function logoutOperation(ctx: ScanContext, login: URL): { url: URL; endpoint?: Endpoint | undefined } {
  const documented = ctx.endpoints.find((e) => e.method === 'POST' && /(^|[/_-])(log-?out|sign-?out)$/i.test(e.url.pathname));
  if (documented !== undefined) return { url: documented.url, endpoint: documented };
  return { url: new URL(login.pathname.replace(/[^/]*$/, 'logout'), login.origin) };
}

/** The documented registration: an anonymous POST named like one (`register`, `signup`). */
export function registerOperation(ctx: ScanContext): Endpoint | undefined {
  return ctx.endpoints.find((e) => e.method === 'POST' && e.requiresAuth !== true && (/(^|[/_-])(register|sign-?up)$/i.test(e.url.pathname) || /^(register|sign-?up)/i.test(e.operationId ?? '')));
}

/** A user name that does not exist, shaped like `like` (an address on the same domain, or a plain name). */
export function unknownUser(like: string): string {
  const name = `rampart-scan-${randomBytes(5).toString('hex')}`;
  const at = like.lastIndexOf('@');
  return at > 0 ? `${name}@${like.slice(at + 1)}` : name;
}

/**
 * A random password with digits and dashes only: no letters, so no rule about the user's name or a
 * common password can make the answers differ for reasons of their own.
 */
export function randomPassword(): string {
  return Array.from({ length: 6 }, () => String(randomInt(1000, 10000))).join('-');
}

export function loginBody(op: LoginOperation, user: string, password: string): string {
  return JSON.stringify({ [op.userField]: user, [op.passwordField]: password });
}

// ---------------------------------------------------------------------------------------------
// Comparing answers

/** Values that differ between two otherwise equal answers: ids, times, request ids. */
const VOLATILE_FIELDS = /"(request_?id|requestId|trace_?id|traceId|correlation_?id|correlationId|span_?id|timestamp|time|date|nonce|instance)"\s*:\s*("(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?)/gi;

/** The body with the submitted user name, ids, times and request ids taken out (what enumeration compares). */
export function normaliseBody(body: string, user: string): string {
  let s = body;
  for (const form of new Set([user, JSON.stringify(user).slice(1, -1), encodeURIComponent(user)])) if (form !== '') s = s.split(form).join('<user>');
  return s
    .replace(VOLATILE_FIELDS, '"$1":"<volatile>"')
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi, '<uuid>')
    .replace(/\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?/g, '<time>')
    .replace(/\b[0-9a-f]{16,}\b/gi, '<hex>')
    .replace(/\b\d{9,}\b/g, '<number>')
    .trim();
}

/** A short, one-line excerpt of a normalised body for a finding's detail. */
export function excerpt(text: string, max = 160): string {
  const line = text.replace(/\s+/g, ' ');
  return line.length <= max ? line : `${line.slice(0, max)}…`;
}

/** Shows the first and last character of a found secret, the middle masked. */
export function maskSecret(secret: string): string {
  if (secret.length <= 2) return '*'.repeat(secret.length);
  if (secret.length <= 4) return `${secret[0]}${'*'.repeat(secret.length - 1)}`;
  return `${secret[0]}${'*'.repeat(secret.length - 2)}${secret.at(-1)}`;
}

/** The finding with every occurrence of `secret` (a token in a URL) masked: evidence never carries credentials. */
export function withoutSecret(finding: Finding, secret: string): Finding {
  const hide = (s: string) => s.split(secret).join('****');
  return {
    ...finding,
    location: { ...finding.location, url: hide(finding.location.url) },
    evidence: { request: hide(finding.evidence.request), response: hide(finding.evidence.response) },
    detail: hide(finding.detail),
  };
}
