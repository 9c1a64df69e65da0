import type { ErrorCode } from '../errors/codes.js';
import type { EventLevel } from './events.js';
import type { RequestContext } from '../gateway/context.js';

/**
 * Every denial is one security event (OWASP vocabulary). Policies that refuse with a reason of
 * their own (authorize, openapi, inspect, the identity service) emit it themselves; for any
 * other denial the observe phase emits one from the problem's code. Codes not listed here are
 * not denials of a request (no route, a timeout, an upstream failure) or are the identity
 * service's, which records its own events (login failures, refresh token reuse).
 */
const DENIALS: Partial<Record<ErrorCode, { type: string; level: EventLevel }>> = {};
const set = (type: string, level: EventLevel, codes: ErrorCode[]) => {
  for (const code of codes) DENIALS[code] = { type, level };
};
set('input_validation_fail', 'WARN', [
  'RMP_INPUT_REJECTED', 'RMP_JSON_DUPLICATE_KEY', 'RMP_JSON_FORBIDDEN_KEY', 'RMP_JSON_INVALID', 'RMP_JSON_LIMIT_EXCEEDED',
  'RMP_REQUEST_MALFORMED', 'RMP_VALIDATION_FAILED', 'RMP_VERSION_REQUIRED', 'RMP_VERSION_UNKNOWN', 'RMP_XML_FORBIDDEN',
  'RMP_XML_INVALID', 'RMP_XML_LIMIT_EXCEEDED', 'RMP_BODY_TOO_LARGE', 'RMP_URL_TOO_LONG', 'RMP_UNSUPPORTED_MEDIA_TYPE',
  'RMP_REQUEST_HEADERS_TOO_LARGE',
]);
set('authn_token_invalid', 'INFO', ['RMP_AUTH_REQUIRED']);
set('authn_token_invalid', 'WARN', ['RMP_AUTH_INVALID_REQUEST', 'RMP_AUTH_TOKEN_EXPIRED', 'RMP_AUTH_TOKEN_INVALID', 'RMP_AUTH_TOKEN_REVOKED']);
set('authz_fail', 'WARN', ['RMP_AUTHZ_DENIED', 'RMP_IP_DENIED', 'RMP_CSRF_FAILED', 'RMP_OBJECT_NOT_FOUND']);
set('malicious_cors', 'WARN', ['RMP_CORS_PREFLIGHT_REJECTED']);
set('excess_rate_limit_exceeded', 'WARN', ['RMP_RATE_LIMITED', 'RMP_TOO_MANY_CONNECTIONS']);

/** The observe phase: a denial that no policy recorded becomes one event. Never throws. */
export function recordDenial(ctx: RequestContext, status: number): void {
  const code = ctx.errorCode;
  if (code === undefined) return;
  const denial = DENIALS[code as ErrorCode];
  const events = ctx.pipeline.events;
  if (denial === undefined || events === undefined || ctx.evented) return;
  const consumer = ctx.consumer?.id;
  const traceId = ctx.traceId;
  events.emit({
    type: denial.type,
    level: denial.level,
    description: `request denied: ${code} (${status})`,
    args: consumer === undefined ? undefined : [consumer],
    requestId: ctx.requestId,
    clientIp: ctx.clientIp,
    route: ctx.route.name,
    ...(consumer !== undefined ? { actor: consumer } : {}),
    data: traceId === undefined ? { problem: code, status, method: ctx.request.method } : { problem: code, status, method: ctx.request.method, traceId },
  });
}
