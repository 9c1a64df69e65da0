import { RampartError } from '../errors/problem.js';
import type { Consumer, RequestContext } from '../gateway/context.js';

/** What every authentication policy does once it knows the caller. */
export function setConsumer(req: RequestContext, consumer: Consumer, hide: string | undefined): void {
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
  if (hide !== undefined) (req.hiddenHeaders ??= []).push(hide);
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

/** `Authorization: Bearer <token>` (RFC 6750 b64token); Node joins repeated headers with ', ', which this refuses. */
export const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*)$/i;

/** A token in the query string (RFC 6750 §2.3), refused rather than ignored. */
export function tokenInQuery(query: string): boolean {
  return query.includes('access_token=') && new URLSearchParams(query).has('access_token');
}
