import { Type } from '@sinclair/typebox';
import { RampartError } from '../errors/problem.js';
import type { Consumer, RequestContext } from '../gateway/context.js';

/**
 * What every authentication policy does once it knows the caller. (Its credential header is
 * removed by the route, through the policy's `hides`, whichever policy decides.)
 */
export function setConsumer(req: RequestContext, consumer: Consumer): void {
  req.consumer = consumer;
  req.authenticated = true;
  const headers: Record<string, string> = {
    ...req.upstreamHeaders,
    'x-consumer-id': consumer.id,
    'x-consumer-type': consumer.type,
    'x-consumer-scopes': consumer.scopes.join(' '),
    'x-consumer-roles': consumer.roles.join(','),
  };
  if (consumer.keyId !== undefined) headers['x-consumer-key'] = consumer.keyId;
  req.upstreamHeaders = headers;
}

export type AuthErrorCode = 'RMP_AUTH_REQUIRED' | 'RMP_AUTH_INVALID_REQUEST' | 'RMP_AUTH_TOKEN_INVALID' | 'RMP_AUTH_TOKEN_EXPIRED' | 'RMP_AUTH_TOKEN_REVOKED';

/**
 * A 401 with an RFC 6750 challenge: `Bearer realm="…"` alone when credentials are missing, with
 * `error` and `error_description` (fixed texts, never the client's) otherwise.
 */
export function bearerRefusal(realm: string): (code: AuthErrorCode, description?: string) => RampartError {
  const challenge = `Bearer realm="${realm}"`;
  return (code, description) => {
    const error = code === 'RMP_AUTH_REQUIRED' ? undefined : code === 'RMP_AUTH_INVALID_REQUEST' ? 'invalid_request' : 'invalid_token';
    const header = error === undefined ? challenge : `${challenge}, error="${error}"${description !== undefined ? `, error_description="${description}"` : ''}`;
    return new RampartError(code, { detail: description, headers: { 'www-authenticate': header } });
  };
}

/** `Authorization: Bearer <token>` (RFC 6750 b64token). */
export const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*)$/i;

/**
 * Whether the query has a parameter of one of these names (decoded, any case, `;` as a separator
 * too, as some servers read it): credentials there are refused rather than ignored.
 */
export function queryHasName(query: string, names: ReadonlySet<string>): boolean {
  if (query === '') return false;
  for (const part of query.slice(1).split(/[&;]/)) {
    const eq = part.indexOf('=');
    let name = eq === -1 ? part : part.slice(0, eq);
    try {
      name = decodeURIComponent(name.replace(/\+/g, ' '));
    } catch {
      return true; // undecodable: refuse rather than guess
    }
    if (names.has(name.trim().toLowerCase())) return true;
  }
  return false;
}

const TOKEN_PARAMETERS = new Set(['access_token']);

/** A token in the query string (RFC 6750 §2.3), refused rather than ignored. */
export function tokenInQuery(query: string): boolean {
  return queryHasName(query, TOKEN_PARAMETERS);
}

/** More than one `Authorization` header (Node keeps only the first): refused. */
export function repeatedAuthorization(rawHeaders: readonly string[]): boolean {
  let seen = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) if (rawHeaders[i]!.length === 13 && rawHeaders[i]!.toLowerCase() === 'authorization' && ++seen > 1) return true;
  return false;
}

/** Options every bearer-token policy (jwt, introspection) has, with one wording. */
export const bearerFields = () => ({
  realm: Type.String({ pattern: '^[\\x20-\\x21\\x23-\\x5b\\x5d-\\x7e]{1,64}$', 'x-expected': 'printable text without quotes or backslashes', description: '`realm` in `WWW-Authenticate`.', default: 'rampart' }),
  scopesClaim: Type.String({ minLength: 1, description: 'Claim holding the scopes (a space-separated string or a list).', default: 'scope' }),
  rolesClaim: Type.String({ minLength: 1, description: 'Claim holding the roles (a list).', default: 'roles' }),
  anonymous: Type.Boolean({ description: 'Credentials optional: a request without any goes on without a consumer. A request with bad credentials is still refused.', default: false }),
  hideCredentials: Type.Boolean({ description: 'Remove `Authorization` before forwarding (the upstream gets `X-Consumer-*` instead).', default: true }),
});
