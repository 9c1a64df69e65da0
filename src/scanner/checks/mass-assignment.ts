import { isDeepStrictEqual } from 'node:util';
import { findingFrom } from '../finding.js';
import type { ScanResponse } from '../http.js';
import { propertiesOf } from '../openapi.js';
import type { Check, Endpoint, Finding, Identity, ScanContext } from '../types.js';
import { as, bodyFor, budgetFor, createdId, exchange, idOf, is2xx, isRecord, jsonHeaders, marker, NO_DOCUMENT, objectsOf, parseJson, subjectOf, undecided, urlFor } from './authz-common.js';

/**
 * Mass assignment (broken object property level authorization): a POST/PUT/PATCH whose request
 * or answer schema has properties a client must not set — readOnly ones, or ones named like a
 * privilege (role, isAdmin, ownerId, balance…) — gets a valid body from its schema plus those
 * properties set to distinctive values (role "admin", ownerId of caller B, balance 31337). Then
 * the object is read back (the item GET; the write's own answer when there is none): a value that
 * stuck is the finding. Always destructive: it writes. An existing object (a PATCH/PUT) is read
 * before, so a value it already had does not count, and written back after; a created one is
 * deleted.
 */

/** Operations tried per scan. */
export const MAX_OPERATIONS = 4;
/** Per operation: find A's object (list), read before, write, read back, restore or delete. */
export const REQUESTS_PER_OPERATION = 5;

const PRIVILEGED = /^(role|roles|is_?admin|admin|is_?superuser|superuser|permissions|scopes|groups|owner_?id|owner|user_?id|verified|is_?verified|email_?verified|balance|price|credits|plan|tier)$/i;
const ID_LIKE = /^(id|_id|uuid)$|(^|_)id$|Id$/;

interface Tamper {
  property: string;
  value: unknown;
  /** Named like a privilege (else only readOnly). */
  privileged: boolean;
}

function typeOf(schema: Record<string, unknown>): string | undefined {
  return Array.isArray(schema.type) ? (schema.type as string[]).find((t) => t !== 'null') : (schema.type as string | undefined);
}

/** The distinctive value a privileged property is set to, or undefined when none makes sense. */
export function tamperValue(name: string, schema: Record<string, unknown>, ownerOfB: string | undefined, creating: boolean): unknown {
  const type = typeOf(schema);
  const n = name.toLowerCase().replace(/_/g, '');
  if (Array.isArray(schema.enum)) {
    // An enum names the privileged value, or there is none to try.
    const privileged = (schema.enum as unknown[]).find((v) => typeof v === 'string' && /admin|owner|super|root|enterprise|premium/i.test(v));
    return privileged;
  }
  if (/^(role|roles|permissions|scopes|groups)$/.test(n)) return type === 'array' ? ['admin'] : 'admin';
  if (/^(ownerid|owner|userid)$/.test(n)) return type === 'integer' || type === 'number' ? 31337 : (ownerOfB ?? marker('rampart-scan-owner'));
  if (/^(balance|price|credits)$/.test(n)) return type === 'string' ? '31337' : 31337;
  if (/^(plan|tier)$/.test(n)) return 'enterprise';
  // A new object may well start out true (verified, active): booleans only count against a value read before.
  if (type === 'boolean') return creating ? undefined : true;
  if (type === 'string' && schema.format === undefined) return marker();
  if (type === 'integer' || type === 'number') return 31337;
  return undefined;
}

/** The properties to tamper with: privileged names (request or answer schema) and readOnly properties that are not ids or timestamps. */
export function tampersOf(e: Endpoint, ownerOfB: string | undefined): Tamper[] {
  const creating = e.method === 'POST';
  const props = { ...propertiesOf(e.responseSchema), ...propertiesOf(e.requestBody?.schema) };
  const out: Tamper[] = [];
  for (const [name, schema] of Object.entries(props)) {
    const privileged = PRIVILEGED.test(name);
    if (!privileged && (schema.readOnly !== true || ID_LIKE.test(name) || schema.format !== undefined)) continue;
    const value = tamperValue(name, schema, ownerOfB, creating);
    if (value !== undefined) out.push({ property: name, value, privileged });
  }
  return out;
}

function stuck(value: unknown, wanted: unknown): boolean {
  if (isDeepStrictEqual(value, wanted)) return true;
  if (Array.isArray(wanted) && Array.isArray(value)) return wanted.every((w) => value.includes(w));
  return typeof wanted === 'number' && typeof value === 'string' && value === String(wanted);
}

/** The object's JSON, or its `data` when the API wraps it. */
function objectIn(res: ScanResponse): Record<string, unknown> | undefined {
  const body = parseJson(res.body);
  if (!isRecord(body)) return undefined;
  return isRecord(body.data) && !Object.keys(body).some((k) => k !== 'data' && k !== 'meta') ? body.data : body;
}

interface Plan {
  write: Endpoint;
  /** Where the object is written to (a PATCH/PUT with A's own object's id filled in). */
  url: URL;
  /** The item GET that reads it back (undefined: only the write's answer tells). */
  read?: { endpoint: Endpoint; url?: URL | undefined; parameter?: string | undefined } | undefined;
  remove?: { endpoint: Endpoint; parameter: string } | undefined;
}

/** Where to write and read: an existing object of A's for PATCH/PUT (listed by the collection), the collection for POST. */
async function planFor(ctx: ScanContext, e: Endpoint, a: Identity | undefined): Promise<Plan | undefined> {
  const at = (method: string, template: string) => ctx.endpoints.find((x) => x.method === method && x.template === template);
  const params = e.parameters.filter((p) => p.in === 'path');
  if (e.method === 'POST') {
    const item = ctx.endpoints.find((x) => x.method === 'GET' && new RegExp(`^${escape(e.template)}/\\{[^{}/]+\\}$`).test(x.template));
    const parameter = item === undefined ? undefined : /\{([^{}/]+)\}$/.exec(item.template)![1]!;
    const remove = item === undefined ? undefined : at('DELETE', item.template);
    // A created object must be deletable again.
    if (item === undefined || remove === undefined || parameter === undefined) return undefined;
    return { write: e, url: e.url, read: { endpoint: item, parameter }, remove: { endpoint: remove, parameter } };
  }
  const read = at('GET', e.template);
  if (params.length === 0) return { write: e, url: e.url, read: read === undefined ? undefined : { endpoint: read, url: read.url } };
  // `/notes/{id}`: one of A's own objects, from the collection.
  const m = /^(.*)\/\{([^{}/]+)\}$/.exec(e.template);
  const list = m === null || params.length !== 1 ? undefined : at('GET', m[1]!);
  if (list === undefined) return undefined;
  const res = await ctx.http.send({ url: list.url, headers: as(a) });
  const first = is2xx(res) ? objectsOf(parseJson(res.body))[0] : undefined;
  const id = first === undefined ? undefined : idOf(first, m![2]!);
  if (id === undefined) return undefined;
  const url = urlFor(e, { [m![2]!]: id });
  return { write: e, url, read: read === undefined ? undefined : { endpoint: read, url: urlFor(read, { [m![2]!]: id }) } };
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

async function probe(ctx: ScanContext, e: Endpoint, a: Identity | undefined, ownerOfB: string | undefined): Promise<Finding | undefined> {
  const tampers = tampersOf(e, ownerOfB);
  if (tampers.length === 0 || !budgetFor(ctx, REQUESTS_PER_OPERATION)) return undefined;
  const plan = await planFor(ctx, e, a);
  if (plan === undefined) return undefined;
  const schema = e.requestBody?.schema;
  let before: Record<string, unknown> | undefined;
  if (plan.read?.url !== undefined) {
    const res = await ctx.http.send({ url: plan.read.url, headers: as(a) });
    before = !undecided(ctx, 'mass-assignment', `massassign on ${e.method} ${e.template}`, res) && is2xx(res) ? objectIn(res) : undefined;
    if (before === undefined) return undefined;
  }
  // A value the object already holds proves nothing (caller A may rightly be what we try to make it).
  const tried = tampers.filter((t) => before === undefined || !stuck(before[t.property], t.value));
  if (tried.length === 0) return undefined;
  const valid = bodyFor(schema);
  const body = { ...valid, ...Object.fromEntries(tried.map((t) => [t.property, t.value])) };
  const write = await ctx.http.send({ method: e.method, url: plan.url, headers: jsonHeaders(a), body: JSON.stringify(body) });
  if (undecided(ctx, 'mass-assignment', `massassign on ${e.method} ${e.template}`, write) || !is2xx(write)) return undefined;

  let created: string | undefined;
  let readBack: ScanResponse | undefined;
  try {
    if (plan.read?.parameter !== undefined) {
      created = createdId(write, plan.read.parameter);
      if (created === undefined) ctx.logger.warn(`mass-assignment: ${exchange(write)} created an object but named no id: it is left behind`);
    }
    const readUrl = plan.read === undefined ? undefined : (plan.read.url ?? (created === undefined ? undefined : urlFor(plan.read.endpoint, { [plan.read.parameter!]: created })));
    if (readUrl !== undefined) readBack = await ctx.http.send({ url: readUrl, headers: as(a) });
  } finally {
    await undo(ctx, plan, a, created, before, body);
  }
  // The item GET tells what was stored; the write's own answer only what the handler echoed (less sure).
  if (undecided(ctx, 'mass-assignment', `massassign on ${e.method} ${e.template}`, readBack)) return undefined;
  const judged = readBack !== undefined && is2xx(readBack) ? readBack : plan.read === undefined ? write : undefined;
  const object = judged === undefined ? undefined : objectIn(judged);
  if (judged === undefined || object === undefined) return undefined;
  const held = tried.filter((t) => stuck(object[t.property], t.value));
  if (held.length === 0) return undefined;
  const list = held.map((t) => `${t.property} = ${JSON.stringify(t.value)}${before === undefined ? '' : ` (was ${JSON.stringify(before[t.property] ?? null)})`}`).join(', ');
  return findingFrom('mass-assignment', write, {
    id: 'massassign.privileged-property',
    title: `Privileged property accepted from the client (${e.method} ${e.template}: ${held.map((t) => t.property).join(', ')})`,
    // A privilege that sticks is high; a readOnly property of another kind (a name, a slug) medium.
    severity: held.some((t) => t.privileged) ? 'high' : 'medium',
    confidence: judged === write ? 'medium' : 'high',
    owasp: 'API3:2023',
    detail:
      `${e.method} ${plan.url.pathname} with ${list} answered ${write.status}, and ${judged === write ? 'its answer' : `the object read back (${exchange(judged)})`} holds ${held.length === 1 ? 'that value' : 'those values'}. ` +
      `${created !== undefined ? 'The object created was deleted.' : before !== undefined ? 'The values read before were written back.' : ''}`.trim(),
    remediation:
      'Bind request bodies to an explicit allowlist of the properties a client may set (a DTO or the schema with additionalProperties: false and readOnly properties refused), ' +
      'never the whole body onto the stored object; set roles, owners and balances on the server from the authenticated caller.',
  }, e);
}

/** Deletes what was created; writes back what an existing object held before. */
async function undo(ctx: ScanContext, plan: Plan, a: Identity | undefined, created: string | undefined, before: Record<string, unknown> | undefined, sent: Record<string, unknown>): Promise<void> {
  try {
    if (created !== undefined && plan.remove !== undefined) {
      const res = await ctx.http.send({ method: 'DELETE', url: urlFor(plan.remove.endpoint, { [plan.remove.parameter]: created }), headers: as(a) });
      if (!is2xx(res)) ctx.logger.warn(`mass-assignment: could not delete the object it created (${exchange(res)})`);
    } else if (before !== undefined) {
      const restore = Object.fromEntries(Object.keys(sent).filter((k) => k in before).map((k) => [k, before[k]]));
      const res = await ctx.http.send({ method: plan.write.method, url: plan.url, headers: jsonHeaders(a), body: JSON.stringify(plan.write.method === 'PUT' ? { ...bodyFor(plan.write.requestBody?.schema), ...restore } : restore) });
      if (!is2xx(res)) ctx.logger.warn(`mass-assignment: could not write back the values of ${plan.url.pathname} (${exchange(res)})`);
    }
  } catch (error) {
    ctx.logger.warn(`mass-assignment: could not undo its write to ${plan.url.pathname}: ${(error as Error).message}`);
  }
}

/** Privileged names in the request schema first, PATCH/PUT before POST, then document order. */
function rank(e: Endpoint): number {
  const inRequest = Object.keys(propertiesOf(e.requestBody?.schema)).some((n) => PRIVILEGED.test(n));
  return (inRequest ? 0 : 2) + (e.method === 'POST' ? 1 : 0);
}

export const massAssignmentCheck: Check = {
  id: 'mass-assignment',
  title: 'Mass assignment of privileged properties',
  owasp: 'API3:2023',
  destructive: true,
  description:
    `Writes (POST/PUT/PATCH, up to ${MAX_OPERATIONS} operations) a valid body plus readOnly or privileged properties (role "admin", isAdmin true, ownerId of caller B, balance 31337…), ` +
    'then reads the object back: a value that stuck is a finding. Existing objects are restored, created ones deleted. Only with --destructive.',
  async run(ctx) {
    if (ctx.document === undefined) {
      ctx.skip('mass-assignment', `${NO_DOCUMENT} to know the request bodies and which properties are readOnly`);
      return [];
    }
    const a = ctx.identities.a;
    const ownerOfB = subjectOf(ctx.identities.b);
    const writes = ctx.endpoints
      .filter((e) => e.from === 'openapi' && ['POST', 'PUT', 'PATCH'].includes(e.method) && e.requestBody?.mediaType.includes('json') === true)
      .filter((e) => tampersOf(e, ownerOfB).length > 0);
    // PATCH and PUT on the same object are one test.
    const chosen = writes.filter((e) => !(e.method === 'PUT' && writes.some((x) => x.method === 'PATCH' && x.template === e.template)));
    const ordered = chosen.map((e, i) => ({ e, i })).sort((x, y) => rank(x.e) - rank(y.e) || x.i - y.i).map((x) => x.e);
    const findings: Finding[] = [];
    for (const e of ordered.slice(0, MAX_OPERATIONS)) {
      const f = await probe(ctx, e, a, ownerOfB);
      if (f !== undefined) findings.push(f);
    }
    return findings;
  },
};
