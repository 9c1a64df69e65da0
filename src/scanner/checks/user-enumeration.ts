import { propertiesOf } from '../openapi.js';
import { findingFrom } from '../finding.js';
import type { ScanResponse } from '../http.js';
import { isThrottled } from '../throttle.js';
import type { Check, Endpoint, Finding, ScanContext } from '../types.js';
import { excerpt, isSuccess, loginBody, loginOperation, normaliseBody, randomPassword, registerOperation, sampleBody, unknownUser } from './authn-common.js';

/**
 * User enumeration: the login is sent a wrong password for caller A's user (who exists) and for
 * two user names nobody has; if the existing user's answer differs from the unknown users' (status,
 * or body once ids, times and the name itself are taken out) while the two unknown ones agree, the
 * login tells who has an account. With --destructive, registration the same way (it creates two
 * accounts).
 */

const CHECK = 'user-enumeration';

interface Attempt {
  user: string;
  res: ScanResponse;
  normal: string;
}

type Compared = { decided: false; reason: string } | { decided: true; differs: boolean; existing: Attempt; unknown: Attempt };

/** Existing vs unknown, after checking that two unknown users answer alike (else the difference is noise). */
async function compare(send: (user: string) => Promise<ScanResponse>, existingUser: string, allowSuccess: boolean): Promise<Compared> {
  const attempt = async (user: string): Promise<Attempt> => {
    const res = await send(user);
    return { user, res, normal: normaliseBody(res.body, user) };
  };
  const existing = await attempt(existingUser);
  const first = await attempt(unknownUser(existingUser));
  const second = await attempt(unknownUser(existingUser));
  for (const { res } of [existing, first, second]) {
    // A limiter (429, 503, Retry-After on any status: a lockout says nothing of who exists) or a failing server.
    if (isThrottled(res) || res.status >= 500) return { decided: false, reason: `an attempt answered ${res.status}${isThrottled(res) && res.status < 500 && res.status !== 429 ? ' with Retry-After' : ''}` };
    if (isSuccess(res) && !allowSuccess) return { decided: false, reason: `a wrong password answered ${res.status}` };
  }
  if (first.res.status !== second.res.status || first.normal !== second.normal) return { decided: false, reason: 'two unknown users got different answers (something in them changes every time)' };
  return { decided: true, differs: existing.res.status !== first.res.status || existing.normal !== first.normal, existing, unknown: first };
}

function describe(a: Attempt): string {
  return `${a.res.status} ${excerpt(a.normal)}`;
}

async function login(ctx: ScanContext): Promise<Finding[]> {
  const op = loginOperation(ctx)!;
  const password = randomPassword();
  const send = (user: string) => ctx.http.send({ method: 'POST', url: op.url, headers: { 'content-type': 'application/json', accept: 'application/json' }, body: loginBody(op, user, password) });
  const result = await compare(send, ctx.login!.user, false);
  if (!result.decided) {
    ctx.skip(CHECK, `enumeration.login: no decision, ${result.reason}`);
    return [];
  }
  if (!result.differs) return [];
  return [
    findingFrom(CHECK, result.unknown.res, {
      id: 'enumeration.login',
      title: 'Login answers tell existing users from unknown ones',
      severity: 'medium',
      confidence: 'high',
      owasp: 'API2:2023',
      detail: `A wrong password for ${result.existing.user} (who exists) got ${describe(result.existing)}; an unknown user got ${describe(result.unknown)} (twice, alike). Anyone can test which names or addresses have an account, then aim password guessing and phishing at them.`,
      remediation: 'Answer an unknown user, a wrong password, a locked and a disabled account identically (status, headers, body), after the same password-hashing work (verify a dummy hash for unknown users).',
    }, op.endpoint),
  ];
}

async function register(ctx: ScanContext, endpoint: Endpoint): Promise<Finding[]> {
  const fields = Object.keys(propertiesOf(endpoint.requestBody?.schema));
  const userField = fields.includes(ctx.login!.userField) ? ctx.login!.userField : (['email', 'username', 'user', 'login', 'name'].find((f) => fields.includes(f)) ?? ctx.login!.userField);
  const passwordField = fields.find((f) => /^(password|passwd|pass|pwd)$/i.test(f)) ?? 'password';
  const password = randomPassword();
  const send = (user: string) =>
    ctx.http.send({ method: 'POST', url: endpoint.url, headers: { 'content-type': 'application/json', accept: 'application/json' }, body: sampleBody(endpoint, { [userField]: user, [passwordField]: password }) });
  const result = await compare(send, ctx.login!.user, true);
  if (!result.decided) {
    ctx.skip(CHECK, `enumeration.register: no decision, ${result.reason}`);
    return [];
  }
  if (!result.differs) return [];
  return [
    findingFrom(CHECK, result.existing.res, {
      id: 'enumeration.register',
      title: 'Registration tells taken user names from free ones',
      severity: 'medium',
      confidence: 'high',
      owasp: 'API2:2023',
      detail: `Registering ${result.existing.user} (who exists) got ${describe(result.existing)}; a new name got ${describe(result.unknown)} (twice, alike). Anyone can test which names or addresses have an account.`,
      remediation: 'Answer registration the same whether or not the name is taken (202 "if this address was free, the account is ready"), and tell the owner of an existing account by e-mail instead; never replace the existing account.',
    }, endpoint),
  ];
}

export const userEnumerationCheck: Check = {
  id: CHECK,
  title: 'User enumeration',
  owasp: 'API2:2023',
  description:
    "Logs in with a wrong password as caller A's user and as two unknown users, and compares the answers (status; body without ids, times and the name); with --destructive, registers caller A's user and two new ones the same way.",
  async run(ctx) {
    if (ctx.login === undefined) {
      ctx.skip(CHECK, 'needs --login (caller A is the user known to exist)');
      return [];
    }
    const found = await login(ctx);
    const reg = registerOperation(ctx);
    if (reg !== undefined && !ctx.options.destructive) ctx.skip(CHECK, `enumeration.register: POST ${reg.template} creates accounts (only with --destructive)`);
    else if (reg !== undefined) found.push(...(await register(ctx, reg)));
    return found;
  },
};
