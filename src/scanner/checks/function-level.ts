import { findingFrom } from '../finding.js';
import { isAuthRefusal } from '../identity.js';
import type { Check, Endpoint, Finding } from '../types.js';
import { as, bodyFor, exchange, is2xx, jsonHeaders, NO_DOCUMENT, undecided } from './authz-common.js';

/**
 * Broken function level authorization: operations the document marks as administrative, called
 * by caller A, who must be a normal user. The operation has to refuse an anonymous request
 * (401/403) first: one that answers everybody is public (or broken in another way), not a
 * privilege problem between users. GET only in safe mode; POST/PUT/PATCH with --destructive;
 * DELETE never (deleting a user or a tenant cannot be undone, and the other methods show the gap).
 */

/** Administrative operations called per scan (2 requests each: anonymous, then as A). */
export const MAX_OPERATIONS = 5;
const WRITES = new Set(['POST', 'PUT', 'PATCH']);

/** Tagged admin/administration, a path segment `admin`, a scope naming admin, or an operationId starting with admin. */
export function isAdministrative(e: Endpoint): boolean {
  return (
    (e.tags ?? []).some((t) => /^admin(istration)?$/i.test(t.trim())) ||
    e.template.split('/').some((s) => /^admin(istration)?$/i.test(s)) ||
    (e.scopes ?? []).some((s) => /admin/i.test(s)) ||
    /^admin/i.test(e.operationId ?? '')
  );
}

function why(e: Endpoint): string {
  const reasons: string[] = [];
  if ((e.tags ?? []).some((t) => /^admin(istration)?$/i.test(t.trim()))) reasons.push(`tagged ${e.tags!.join(', ')}`);
  if (e.template.split('/').some((s) => /^admin(istration)?$/i.test(s))) reasons.push('an admin path');
  if ((e.scopes ?? []).some((s) => /admin/i.test(s))) reasons.push(`scopes ${e.scopes!.join(', ')}`);
  if (/^admin/i.test(e.operationId ?? '')) reasons.push(`operationId ${e.operationId}`);
  return reasons.join('; ');
}

export const functionLevelCheck: Check = {
  id: 'function-level',
  title: 'Broken function level authorization',
  owasp: 'API5:2023',
  description:
    `Calls up to ${MAX_OPERATIONS} operations the document marks as administrative (tag admin, an admin path segment, an admin scope, operationId admin…) ` +
    'without credentials and as caller A (a normal user): refused anonymously but 2XX for A is a finding. GET only; POST/PUT/PATCH with --destructive; never DELETE.',
  async run(ctx) {
    if (ctx.document === undefined) {
      ctx.skip('function-level', `${NO_DOCUMENT} to know which operations are administrative`);
      return [];
    }
    const a = ctx.identities.a;
    if (a === undefined) {
      ctx.skip('function-level', 'needs caller A, a normal (non-admin) user: --auth or --login');
      return [];
    }
    const admin = ctx.endpoints.filter((e) => e.from === 'openapi' && isAdministrative(e));
    const callable = admin.filter((e) => e.method === 'GET' || (ctx.options.destructive && WRITES.has(e.method)));
    if (!ctx.options.destructive && admin.some((e) => WRITES.has(e.method))) ctx.skip('function-level', 'administrative writes (POST/PUT/PATCH) are called only with --destructive');
    const findings: Finding[] = [];
    for (const e of callable.slice(0, MAX_OPERATIONS)) {
      const body = e.requestBody === undefined ? undefined : JSON.stringify(bodyFor(e.requestBody.schema));
      const send = (headers: Record<string, string>) => ctx.http.send({ method: e.method, url: e.url, headers, body });
      const anonymous = await send(body === undefined ? as(undefined) : jsonHeaders(undefined));
      // A 401 or 403 with Retry-After is a limiter speaking, not the operation's authorization.
      if (undecided(ctx, 'function-level', `bfla.admin-operation on ${e.method} ${e.template}`, anonymous)) continue;
      if (!isAuthRefusal(anonymous.status, anonymous.headers)) {
        ctx.logger.debug(`function-level: ${e.method} ${e.template} answers ${anonymous.status} without credentials: not judged as a privilege problem`);
        continue;
      }
      const res = await send(body === undefined ? as(a) : jsonHeaders(a));
      if (undecided(ctx, 'function-level', `bfla.admin-operation on ${e.method} ${e.template}`, res) || !is2xx(res)) continue;
      findings.push(
        findingFrom('function-level', res, {
          id: 'bfla.admin-operation',
          title: `A normal user calls an administrative operation (${e.method} ${e.template})`,
          severity: 'high',
          confidence: 'medium',
          owasp: 'API5:2023',
          detail:
            `${e.method} ${e.template} is administrative (${why(e)}). Without credentials it is refused (${anonymous.status}); caller A, given as a normal user, got ${exchange(res)}. ` +
            '(Confidence medium: the scan relies on caller A not being an administrator.)',
          remediation:
            'Authorize every administrative operation by role or scope on the server, deny by default, and keep the check in one place (a policy on the /admin routes) ' +
            'rather than in each handler; hiding the operation from the user interface is not a control.',
        }, e),
      );
    }
    return findings;
  },
};
