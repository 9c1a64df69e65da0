import { findingFrom } from '../finding.js';
import type { ScanResponse } from '../http.js';
import type { Check, Finding, Identity, ScanContext } from '../types.js';
import {
  around,
  as,
  bodyFor,
  budgetFor,
  createdId,
  exchange,
  idOf,
  is2xx,
  isRecord,
  jsonHeaders,
  marker,
  markableProperty,
  NO_DOCUMENT,
  objectsOf,
  parseJson,
  resourcesOf,
  stringLeaves,
  subjectOf,
  undecided,
  urlFor,
  type Resource,
} from './authz-common.js';

/**
 * Broken object level authorization (BOLA/IDOR) with two callers. For each resource the document
 * declares as an item operation and its collection (`GET /notes/{id}` and `GET /notes`), B lists
 * their objects, picks one A does not also see, reads it and takes a marker from it (a string of
 * B's object that A's own list does not contain); then A reads the same item. A 2XX answer to A
 * carrying B's marker is the finding, unless an anonymous request gets it too (then the object is
 * public: not an authorization problem between users). With --destructive, B creates an object when
 * they have none, and A tries to change one of B's objects (PATCH/PUT), which B then reads back.
 */

/** Resources probed per scan. */
export const MAX_RESOURCES = 3;
/** Per resource in safe mode: B lists, A lists, B reads, A reads, the anonymous control (on a positive only). */
export const SAFE_REQUESTS_PER_RESOURCE = 5;
/**
 * More per resource with --destructive: B creates, B reads, A lists, A writes, B reads back, B
 * deletes (an existing object is written back instead of created and deleted: fewer).
 */
export const DESTRUCTIVE_REQUESTS_PER_RESOURCE = 6;
const MARKER_LENGTH = 'rampart-scan-00000000'.length;

interface Target {
  id: string;
  url: URL;
  /** A string of B's object that A's own objects do not contain. */
  marker: string;
  /** B's object as B read it. */
  item: Record<string, unknown>;
  created: boolean;
}

const REMEDIATION =
  'Check on every object access that the caller may act on that object (owner, tenant, share), in one place the handlers cannot forget: ' +
  'load the object through a query scoped to the caller, and answer 404 for objects of others. Prefer unguessable ids, but never rely on them.';

/** A string of B's object that identifies it: not its id, not in A's own objects, not shared by B's other objects; names like title first. */
export function markerOf(item: unknown, id: string, notIn: readonly string[]): string | undefined {
  const candidates = stringLeaves(item).filter(({ value }) => value.length >= 4 && value !== id && /[a-z0-9]/i.test(value) && !notIn.some((text) => text.includes(value)));
  const named = candidates.filter(({ key }) => /title|name|subject|owner|email|user|description|body|content|text|label/i.test(key));
  return [...(named.length > 0 ? named : candidates)].sort((x, y) => y.value.length - x.value.length)[0]?.value;
}

async function existingObjectOfB(ctx: ScanContext, r: Resource, a: Identity, b: Identity): Promise<Target | undefined> {
  if (r.list === undefined) return undefined;
  const what = `bola on ${r.item.template}`;
  const listB = await ctx.http.send({ url: r.list.url, headers: as(b) });
  if (undecided(ctx, 'bola', what, listB)) return undefined;
  const objectsB = is2xx(listB) ? objectsOf(parseJson(listB.body)) : [];
  if (objectsB.length === 0) return undefined;
  const listA = await ctx.http.send({ url: r.list.url, headers: as(a) });
  if (undecided(ctx, 'bola', what, listA)) return undefined;
  // Without A's own list, an object A may rightly see (shared with A) cannot be told from B's alone.
  if (!is2xx(listA)) {
    ctx.logger.debug(`bola: ${exchange(listA)}: caller A's own list is unknown, nothing to compare`);
    return undefined;
  }
  const objectsA = objectsOf(parseJson(listA.body));
  const idsA = new Set(objectsA.map((o) => idOf(o, r.parameter)));
  const own = objectsB.find((o) => idOf(o, r.parameter) !== undefined && !idsA.has(idOf(o, r.parameter)));
  if (own === undefined) {
    ctx.logger.debug(`bola: ${r.list.template}: A's list holds every object of B's (shared or public objects): nothing to compare`);
    return undefined;
  }
  const id = idOf(own, r.parameter)!;
  const url = urlFor(r.item, { [r.parameter]: id });
  const readB = await ctx.http.send({ url, headers: as(b) });
  const item = parseJson(readB.body);
  if (undecided(ctx, 'bola', what, readB) || !is2xx(readB) || !isRecord(item)) return undefined;
  // Values B's other objects share (a type, a status) do not identify this one.
  const others = objectsB.filter((o) => o !== own).map((o) => JSON.stringify(o));
  const found = markerOf(item, id, [listA.body, ...others]);
  return found === undefined ? undefined : { id, url, marker: found, item, created: false };
}

/** B creates an object with a marker in a string property (only when it can be deleted again). */
async function createAsB(ctx: ScanContext, r: Resource, a: Identity, b: Identity): Promise<Target | undefined> {
  if (r.create === undefined || r.remove === undefined || !budgetFor(ctx, DESTRUCTIVE_REQUESTS_PER_RESOURCE + 2)) return undefined;
  const property = markableProperty(r.create.requestBody?.schema, MARKER_LENGTH);
  if (property === undefined) return undefined;
  const value = marker();
  const res = await ctx.http.send({ method: 'POST', url: r.create.url, headers: jsonHeaders(b), body: JSON.stringify(bodyFor(r.create.requestBody?.schema, { [property]: value })) });
  if (undecided(ctx, 'bola', `bola on ${r.item.template}`, res) || !is2xx(res)) return undefined;
  const id = createdId(res, r.parameter);
  if (id === undefined) {
    ctx.logger.warn(`bola: ${exchange(res)} created an object but named no id: it is left behind (its ${property} is ${value})`);
    return undefined;
  }
  const url = urlFor(r.item, { [r.parameter]: id });
  const readB = await ctx.http.send({ url, headers: as(b) });
  const item = parseJson(readB.body);
  const target = { id, url, marker: value, item: isRecord(item) ? item : {}, created: true };
  // An object B can read, and one A does not list as theirs (else A and B are one user, or objects are shared).
  const listA = r.list === undefined || !is2xx(readB) ? undefined : await ctx.http.send({ url: r.list.url, headers: as(a) });
  const unknown = undecided(ctx, 'bola', `bola on ${r.item.template}`, readB, listA);
  if (unknown || !is2xx(readB) || !readB.body.includes(value) || (listA !== undefined && (!is2xx(listA) || objectsOf(parseJson(listA.body)).some((o) => idOf(o, r.parameter) === id)))) {
    await remove(ctx, r, target, b);
    return undefined;
  }
  return target;
}

async function remove(ctx: ScanContext, r: Resource, target: Target, b: Identity): Promise<void> {
  try {
    const res = await ctx.http.send({ method: 'DELETE', url: urlFor(r.remove!, { [r.parameter]: target.id }), headers: as(b) });
    if (!is2xx(res)) ctx.logger.warn(`bola: could not delete the object it created (${exchange(res)})`);
  } catch (error) {
    ctx.logger.warn(`bola: could not delete the object it created at ${target.url.href}: ${(error as Error).message}`);
  }
}

async function readAsA(ctx: ScanContext, r: Resource, target: Target, a: Identity): Promise<Finding | undefined> {
  const what = `bola.read on ${r.item.template}`;
  const readA = await ctx.http.send({ url: target.url, headers: as(a) });
  if (undecided(ctx, 'bola', what, readA) || !is2xx(readA) || !readA.body.includes(target.marker)) return undefined;
  const anonymous = await ctx.http.send({ url: target.url, headers: as(undefined) });
  // A limiter's 429 is no refusal: the object may well be public.
  if (undecided(ctx, 'bola', what, anonymous)) return undefined;
  if (is2xx(anonymous) && anonymous.body.includes(target.marker)) {
    ctx.logger.debug(`bola: ${r.item.template} answers B's object without credentials: public, not a question of which user (the authentication checks judge that)`);
    return undefined;
  }
  return findingFrom('bola', around(readA, target.marker), {
    id: 'bola.read',
    title: `Caller A reads another user's object (${r.item.method} ${r.item.template})`,
    severity: 'high',
    confidence: 'high',
    owasp: 'API1:2023',
    detail:
      `Caller A got ${readA.status} for ${new URL(readA.request.url).pathname}, an object of caller B${target.created ? ' (created by B for this test)' : ''}, and the answer holds B's marker "${target.marker}" ` +
      `(a value of B's object that A's own objects do not contain). The same request without credentials: ${anonymous.status}, without the marker.`,
    remediation: REMEDIATION,
  }, r.item);
}

async function writeAsA(ctx: ScanContext, r: Resource, target: Target, a: Identity, b: Identity): Promise<Finding | undefined> {
  const update = r.update!;
  const schema = update.requestBody?.schema;
  const property = markableProperty(schema, MARKER_LENGTH);
  if (property === undefined) return undefined;
  const value = marker();
  // PUT replaces the object: send what B's object holds, so nothing but the marker changes.
  const current = (overrides: Record<string, unknown>) => (update.method === 'PATCH' ? overrides : bodyFor(schema, { ...writable(schema, target.item), ...overrides }));
  const url = urlFor(update, { [r.parameter]: target.id });
  const write = await ctx.http.send({ method: update.method, url, headers: jsonHeaders(a), body: JSON.stringify(current({ [property]: value })) });
  if (undecided(ctx, 'bola', `bola.write on ${update.template}`, write) || !is2xx(write)) return undefined;
  let back: ScanResponse;
  try {
    back = await ctx.http.send({ url: target.url, headers: as(b) });
  } finally {
    if (!target.created && property in target.item) {
      const restore = await ctx.http.send({ method: update.method, url, headers: jsonHeaders(b), body: JSON.stringify(current({ [property]: target.item[property] })) });
      if (!is2xx(restore)) ctx.logger.warn(`bola: could not restore ${property} of B's object (${exchange(restore)})`);
    }
  }
  if (undecided(ctx, 'bola', `bola.write on ${update.template}`, back) || !is2xx(back) || !back.body.includes(value)) return undefined;
  return findingFrom('bola', write, {
    id: 'bola.write',
    title: `Caller A changes another user's object (${update.method} ${update.template})`,
    severity: 'high',
    confidence: 'high',
    owasp: 'API1:2023',
    detail:
      `Caller A's ${update.method} ${url.pathname} set ${property} of caller B's object${target.created ? ' (created by B for this test)' : ''} to "${value}" (answered ${write.status}); ` +
      `B then read it back with that value (${exchange(back)}).${target.created ? ' The object was deleted afterwards.' : ' The old value was written back.'}`,
    remediation: REMEDIATION,
  }, update);
}

function sameCaller(a: Identity, b: Identity): boolean {
  if (JSON.stringify(a.headers) === JSON.stringify(b.headers)) return true;
  const [sa, sb] = [subjectOf(a), subjectOf(b)];
  return sa !== undefined && sa === sb;
}

/** The properties of `item` a client may write (per the schema), to send a PUT back unchanged. */
function writable(schema: Record<string, unknown> | undefined, item: Record<string, unknown>): Record<string, unknown> {
  const template = bodyFor(schema);
  return Object.fromEntries(Object.keys(template).filter((k) => k in item).map((k) => [k, item[k]]));
}

export const bolaCheck: Check = {
  id: 'bola',
  title: 'Broken object level authorization',
  owasp: 'API1:2023',
  description:
    `With two callers and a document: up to ${MAX_RESOURCES} resources (an item GET and its collection). B lists and reads one of their objects, A reads it: ` +
    `2XX with B's marker is a finding (bola.read). With --destructive B creates an object when they have none, and A changes one of B's objects (bola.write); everything created is deleted.`,
  async run(ctx) {
    const { a, b } = ctx.identities;
    if (ctx.document === undefined) {
      ctx.skip('bola', `${NO_DOCUMENT} to find objects and the collections that list them`);
      return [];
    }
    if (a === undefined || b === undefined) {
      ctx.skip('bola', 'needs two callers: --auth and --auth-b (or --login with --user-b/--password-b)');
      return [];
    }
    if (sameCaller(a, b)) {
      ctx.skip('bola', 'callers A and B are the same user (the same credentials, or tokens with the same subject): give two different users');
      return [];
    }
    const findings: Finding[] = [];
    const resources = resourcesOf(ctx.endpoints).filter((r) => r.list !== undefined || (ctx.options.destructive && r.create !== undefined)).slice(0, MAX_RESOURCES);
    for (const r of resources) {
      let scratch: Target | undefined;
      try {
        let target = await existingObjectOfB(ctx, r, a, b);
        if (target === undefined && ctx.options.destructive) target = scratch = await createAsB(ctx, r, a, b);
        if (target === undefined) {
          ctx.logger.debug(`bola: ${r.item.template}: no object of B's to test with${ctx.options.destructive ? '' : ' (--destructive lets B create one)'}`);
          continue;
        }
        const read = await readAsA(ctx, r, target, a);
        if (read !== undefined) findings.push(read);
        if (ctx.options.destructive && r.update !== undefined) {
          // Changes go to an object made for the test when the API lets B make (and delete) one.
          if (scratch === undefined && !target.created) scratch = await createAsB(ctx, r, a, b);
          const written = await writeAsA(ctx, r, scratch ?? target, a, b);
          if (written !== undefined) findings.push(written);
        }
      } finally {
        if (scratch !== undefined) await remove(ctx, r, scratch, b);
      }
    }
    return findings;
  },
};
