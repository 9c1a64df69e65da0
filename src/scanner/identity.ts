import { firstHeader, type ScanHttpClient } from './http.js';
import { propertiesOf } from './openapi.js';
import type { Endpoint, Identity, LoginSettings } from './types.js';

/**
 * The callers a scan acts as. `--auth 'Authorization: Bearer …'` (any header: `X-API-Key: …`,
 * `Cookie: sid=…`) gives caller A as is; `--login PATH --user U --password P` logs in with a JSON
 * body and takes the access token (or the session cookie) from the answer. `--auth-b` (or
 * `--user-b/--password-b` with `--login`) is a second, different user: the authorization checks
 * need both.
 */

/** A credential option that cannot be used (exit 2). */
export class CredentialError extends Error {
  override name = 'CredentialError';
}

/** `Name: value` → a header; the name must be a token, the value non-empty. */
export function parseAuthHeader(option: string, text: string): Record<string, string> {
  const colon = text.indexOf(':');
  const name = colon > 0 ? text.slice(0, colon).trim() : '';
  const value = colon > 0 ? text.slice(colon + 1).trim() : '';
  if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(name) || value === '') {
    throw new CredentialError(`${option} expects a header, 'Name: value' (for example 'Authorization: Bearer eyJ…' or 'X-API-Key: …')`);
  }
  return { [name.toLowerCase()]: value };
}

export function identityFromHeader(label: 'A' | 'B', headers: Record<string, string>): Identity {
  const bearer = /^bearer\s+(\S+)$/i.exec(headers.authorization ?? '');
  return { label, headers, token: bearer?.[1] };
}

/** The property a login body names its user with: what the documented login operation declares, else `email` for an address, else `username`. */
export function userFieldFor(user: string, loginEndpoint: Endpoint | undefined): string {
  const declared = Object.keys(propertiesOf(loginEndpoint?.requestBody?.schema));
  for (const candidate of ['email', 'username', 'user', 'login', 'name']) if (declared.includes(candidate)) return candidate;
  return user.includes('@') ? 'email' : 'username';
}

/** Common names of the access token in a login answer (OAuth's first). */
const TOKEN_FIELDS = ['access_token', 'accessToken', 'token', 'jwt', 'id_token'];

export function tokenOf(body: string): string | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return undefined;
  }
  if (parsed === null || typeof parsed !== 'object') return undefined;
  const record = parsed as Record<string, unknown>;
  for (const field of TOKEN_FIELDS) if (typeof record[field] === 'string' && record[field] !== '') return record[field];
  const data = record.data;
  if (data !== null && typeof data === 'object') for (const field of TOKEN_FIELDS) if (typeof (data as Record<string, unknown>)[field] === 'string') return (data as Record<string, string>)[field];
  return undefined;
}

/** Sends the login body; 2XX with a token (or a session cookie) gives the identity, anything else is a CredentialError naming the status. */
export async function logIn(http: ScanHttpClient, login: LoginSettings, label: 'A' | 'B'): Promise<Identity> {
  const user = label === 'A' ? login.user : login.userB!;
  const password = label === 'A' ? login.password : login.passwordB!;
  const res = await http.send({
    method: 'POST',
    url: login.url,
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify({ [login.userField]: user, password }),
  });
  const at = { path: login.url.pathname, user, userField: login.userField };
  if (res.status < 200 || res.status > 299) throw new CredentialError(`--login ${login.url.pathname} as ${user}: answered ${res.status}${res.body === '' ? '' : `: ${res.body.slice(0, 200)}`}`);
  const token = tokenOf(res.body);
  if (token !== undefined) return { label, headers: { authorization: `Bearer ${token}` }, token, login: at };
  const cookies = res.headers['set-cookie'];
  const list = (Array.isArray(cookies) ? cookies : cookies === undefined ? [] : [cookies]).map((c) => c.split(';')[0]!.trim()).filter((c) => c.includes('='));
  if (list.length > 0) return { label, headers: { cookie: list.join('; ') }, login: at };
  throw new CredentialError(`--login ${login.url.pathname} as ${user}: answered ${res.status} but with neither a token (${TOKEN_FIELDS.join(', ')}) nor a cookie`);
}

/** Whether an answer looks like "not authenticated" (what a check compares an anonymous answer with). */
export function isAuthRefusal(status: number, headers: Record<string, string | string[] | undefined>): boolean {
  return status === 401 || status === 403 || (status >= 300 && status < 400 && /login|signin|auth/i.test(firstHeader(headers, 'location') ?? ''));
}
