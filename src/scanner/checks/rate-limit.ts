import { findingFrom } from '../finding.js';
import { firstHeader, type ScanResponse } from '../http.js';
import type { Check, Finding } from '../types.js';
import { loginBody, loginOperation, randomPassword, unknownUser } from './authn-common.js';

/**
 * Rate limiting of the login: a bounded burst of failed logins for a user name that does not
 * exist (so no account can be locked: safe mode), sent one after another at the scan's rate,
 * stopping at the first sign of a limit. No sign in the whole burst is the finding; a limit that
 * answers something else than 429, or 429 without Retry-After, is a lesser one. It runs last of
 * all the checks: the burst spends the login quota of the scan's address.
 */

const CHECK = 'rate-limit';
/**
 * Failed logins in the burst, at most. Above common login limits (Rampart: 20 per minute per
 * address; 5–10 is usual) plus the logins the scan made before, at the default 10 requests per
 * second: 3 seconds.
 */
export const BURST = 30;
/** Answers that are an ordinary failed login (the burst goes on). */
const FAILED_LOGIN = new Set([400, 401, 403, 404, 422]);
const THROTTLE_WORDS = /too many|rate.?limit|slow down|throttl|try again later|retry later/i;

type Outcome =
  | { kind: 'limited'; res: ScanResponse; sent: number }
  | { kind: 'no-retry-after'; res: ScanResponse; sent: number }
  | { kind: 'no-429'; res: ScanResponse; sent: number }
  | { kind: 'unlimited'; res: ScanResponse; sent: number; statuses: string }
  | { kind: 'undecided'; reason: string };

function judge(res: ScanResponse): Outcome['kind'] | 'failed' | 'undecided' {
  const retryAfter = firstHeader(res.headers, 'retry-after');
  if (res.status === 429) return retryAfter === undefined || retryAfter.trim() === '' ? 'no-retry-after' : 'limited';
  if (res.status === 503 || retryAfter !== undefined || THROTTLE_WORDS.test(res.body)) return 'no-429';
  if (FAILED_LOGIN.has(res.status)) return 'failed';
  return 'undecided';
}

export const rateLimitCheck: Check = {
  id: CHECK,
  title: 'Login rate limiting',
  owasp: 'API4:2023',
  description: `Sends up to ${BURST} failed logins for a user name that does not exist, one after another at the scan's rate, and stops at the first 429 or other sign of throttling; no sign at all is the finding.`,
  async run(ctx) {
    const op = loginOperation(ctx);
    if (op === undefined) {
      ctx.skip(CHECK, 'no login operation known (pass --login, or --openapi with a documented login)');
      return [];
    }
    const user = unknownUser(ctx.login?.user ?? (op.userField === 'email' ? 'scan@example.com' : 'scan'));
    const password = randomPassword();
    const started = performance.now();
    let outcome: Outcome | undefined;
    const statuses = new Map<number, number>();
    for (let sent = 1; sent <= BURST && outcome === undefined; sent++) {
      const res = await ctx.http.send({ method: 'POST', url: op.url, headers: { 'content-type': 'application/json', accept: 'application/json' }, body: loginBody(op, user, password) });
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      const kind = judge(res);
      if (kind === 'undecided') outcome = { kind, reason: `attempt ${sent} answered ${res.status}, not a failed login` };
      else if (kind !== 'failed') outcome = { kind, res, sent } as Outcome;
      else if (sent === BURST) outcome = { kind: 'unlimited', res, sent, statuses: [...statuses].map(([s, n]) => `${n}× ${s}`).join(', ') };
    }
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    const path = op.url.pathname;
    const common = { owasp: 'API4:2023' as const };
    const found: Finding[] = [];
    switch (outcome?.kind) {
      case 'undecided':
        ctx.skip(CHECK, `no decision: ${outcome.reason}`);
        break;
      case 'unlimited':
        found.push(findingFrom(CHECK, outcome.res, {
          ...common,
          id: 'ratelimit.none',
          title: `No rate limit on the login (${BURST} failed attempts in ${seconds} s)`,
          severity: 'medium',
          confidence: 'medium',
          detail: `${BURST} failed logins for one unknown user from one address in ${seconds} s (${outcome.statuses}): none was refused with 429 or slowed down. Password guessing and credential stuffing run at full speed.`,
          remediation: 'Limit login attempts per client address (and per account), answering 429 with Retry-After past the limit (Rampart: identity.limits.login, 20 per minute by default); lock accounts progressively after repeated failures.',
        }, op.endpoint));
        break;
      case 'no-429':
        found.push(findingFrom(CHECK, outcome.res, {
          ...common,
          id: 'ratelimit.no-429',
          title: `The login throttles without 429 (${outcome.res.status})`,
          severity: 'low',
          confidence: 'medium',
          detail: `Attempt ${outcome.sent} of a burst of failed logins got ${outcome.res.status}${firstHeader(outcome.res.headers, 'retry-after') === undefined ? ' without Retry-After' : ''} where 429 Too Many Requests was due: clients and tools cannot tell a limit from an outage or a wrong password, and do not back off.`,
          remediation: 'Answer a request past the limit with 429 Too Many Requests and a Retry-After header (RFC 6585 §4).',
        }, op.endpoint));
        break;
      case 'no-retry-after':
        found.push(findingFrom(CHECK, outcome.res, {
          ...common,
          id: 'ratelimit.no-retry-after',
          title: 'The login limit answers 429 without Retry-After',
          severity: 'low',
          confidence: 'high',
          detail: `Attempt ${outcome.sent} of a burst of failed logins got 429 without a Retry-After header: well-behaved clients cannot tell when to try again and retry at once.`,
          remediation: 'Send Retry-After (seconds until the window frees a slot) with every 429.',
        }, op.endpoint));
        break;
      case 'limited':
        ctx.logger.debug(`rate-limit: ${path} answered 429 with Retry-After at attempt ${outcome.sent}`);
        break;
      case undefined:
        break;
    }
    return found;
  },
};
