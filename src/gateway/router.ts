import type { IncomingHttpHeaders } from 'node:http';
import FindMyWay from 'find-my-way';
import type { HTTPMethod } from 'find-my-way';
import { RampartError } from '../errors/problem.js';

/** How a request names the version of a route whose version is chosen by header or media type. */
export interface RouteSelect {
  /** `header`: a request header's value; `mediaType`: a parameter of the `Accept` media ranges; `query`: a query parameter. */
  readonly kind: 'header' | 'mediaType' | 'query';
  /** The header name or the media-type parameter name (lowercase), or the query parameter name. */
  readonly name: string;
  readonly value: string;
  /** A request that names no version gets this route. */
  readonly isDefault: boolean;
}

/** A route as the router needs it. */
export interface RoutableRoute {
  readonly name: string;
  readonly path: string;
  readonly methods: readonly string[];
  readonly host: string | undefined;
  /** Set for routes of a version chosen by header or media type: they may share a method and path. */
  readonly select?: RouteSelect | undefined;
}

export interface RouteMatch<R> {
  route: R;
  params: Record<string, string | undefined>;
}

export interface Router<R extends RoutableRoute> {
  /**
   * The route for a method, normalized path and host (no port), or null. Where routes of several
   * versions share the path, `headers` and `query` (the raw query with its `?`, or '') choose among
   * them (RMP_VERSION_UNKNOWN / RMP_VERSION_REQUIRED are thrown); without `headers` (a CORS
   * preflight, which names no version) the default version's route is taken, else the first such
   * route in config order.
   */
  find(method: string, path: string, host: string | undefined, headers?: IncomingHttpHeaders, query?: string): RouteMatch<R> | null;
  /** Methods some route would accept for this path and host (for 405 `Allow`), sorted. */
  allowed(path: string, host: string | undefined): string[];
}

export class RouteConflictError extends Error {
  constructor(
    readonly routeIndex: number,
    message: string,
  ) {
    super(message);
  }
}

const NO_QUERY = Object.freeze({}) as Record<string, string>;

/**
 * Compiles routes into find-my-way's radix tree: per segment a literal beats a parameter beats a
 * wildcard, and a route with a host beats one without. Two routes claiming the same method, path
 * and host are a config error, so the winner never depends on file order.
 */
export function createRouter<R extends RoutableRoute>(routes: readonly R[]): Router<R> {
  const fmw = FindMyWay({
    caseSensitive: true,
    ignoreTrailingSlash: false,
    ignoreDuplicateSlashes: false,
    maxParamLength: 1000,
    // The query is forwarded as is; the router never needs it parsed.
    querystringParser: () => NO_QUERY,
  });
  const methods = new Set<string>();
  let hosted = false;
  // One entry per method, path pattern and host: a route, or the routes of several versions
  // sharing them (chosen per request by VersionGroup.pick).
  const entries = new Map<string, { index: number; route: R; group: VersionGroup<R> | undefined }>();
  routes.forEach((route, index) => {
    for (const method of route.methods) {
      const key = `${method} ${route.path.replace(/:[^/]+/g, ':')} ${route.host ?? ''}`;
      const taken = entries.get(key);
      if (taken === undefined) {
        entries.set(key, { index, route, group: route.select === undefined ? undefined : new VersionGroup(route) });
        continue;
      }
      const where = `${method} ${route.path}${route.host ? ` on ${route.host}` : ''}`;
      const select = route.select;
      const group = taken.group;
      if (select === undefined || group === undefined) {
        const hint = select !== undefined || group !== undefined ? ' (routes share a path only when all of them belong to versions chosen by select)' : '';
        throw new RouteConflictError(index, `${where} is already taken by route '${taken.route.name}'${hint}`);
      }
      if (select.kind !== group.kind || select.name !== group.name) {
        throw new RouteConflictError(index, `${where} is shared with route '${taken.route.name}', whose version is chosen by ${describeSelect(group.kind, group.name)}, not by ${describeSelect(select.kind, select.name)}: versions sharing a path must be chosen the same way`);
      }
      if (route.path !== taken.route.path) {
        throw new RouteConflictError(index, `${where} is shared with route '${taken.route.name}' as '${taken.route.path}': versions sharing a path must name its parameters the same`);
      }
      const other = group.add(route);
      if (other !== undefined) throw new RouteConflictError(index, `${where} for ${describeSelect(select.kind, select.name)} '${select.value}' is already taken by route '${other.name}'`);
    }
  });
  for (const [key, entry] of entries) {
    const route = entry.route;
    const method = key.slice(0, key.indexOf(' '));
    const constraints = route.host === undefined ? undefined : { host: hostMatcher(route.host) };
    if (constraints !== undefined) hosted = true;
    methods.add(method);
    try {
      fmw.on(method as HTTPMethod, route.path, constraints === undefined ? {} : { constraints }, noop, entry.group ?? route);
    } catch (error) {
      throw new RouteConflictError(entry.index, (error as Error).message);
    }
  }
  const methodList = [...methods].sort();

  const lookup = (method: string, path: string, host: string | undefined) =>
    hosted ? fmw.find(method as HTTPMethod, path, { host: host ?? '' }) : fmw.find(method as HTTPMethod, path);

  return {
    find(method, path, host, headers, query = '') {
      const found = lookup(method, path, host);
      if (found === null) return null;
      const store = found.store as R | VersionGroup<R>;
      // Routes without versions pay this one check.
      if (store instanceof VersionGroup) return { route: headers === undefined ? store.fallback() : store.pick(headers, query), params: found.params };
      return { route: store, params: found.params };
    },
    allowed(path, host) {
      return methodList.filter((m) => lookup(m, path, host) !== null);
    },
  };
}

function noop(): void {}

/**
 * The routes of several versions sharing one method, path and host, all chosen the same way (one
 * header, or one `Accept` parameter): a request goes to the one whose value it names.
 */
class VersionGroup<R extends RoutableRoute> {
  readonly kind: RouteSelect['kind'];
  readonly name: string;
  readonly #byValue = new Map<string, R>();
  readonly #lowerName: string;
  readonly #first: R;
  #default: R | undefined;
  #values: string[] = [];

  constructor(first: R) {
    const select = first.select!;
    this.kind = select.kind;
    this.name = select.name;
    this.#lowerName = select.name.toLowerCase();
    this.#first = first;
    this.add(first);
  }

  /** Adds a route; returns the route already holding its value, if any. */
  add(route: R): R | undefined {
    const select = route.select!;
    const other = this.#byValue.get(select.value);
    if (other !== undefined) return other;
    this.#byValue.set(select.value, route);
    this.#values = [...this.#byValue.keys()];
    if (select.isDefault) this.#default = route;
    return undefined;
  }

  pick(headers: IncomingHttpHeaders, query: string): R {
    const value = this.kind === 'header' ? headerValue(headers[this.name]) : this.kind === 'mediaType' ? this.#fromAccept(headers.accept) : this.#fromQuery(query);
    if (value === undefined) {
      if (this.#default !== undefined) return this.#default;
      throw new RampartError('RMP_VERSION_REQUIRED', { detail: `Name the version ${this.#how()}: one of ${this.#values.join(', ')}.`, extensions: { versions: this.#values } });
    }
    const route = this.#byValue.get(value);
    if (route !== undefined) return route;
    throw new RampartError('RMP_VERSION_UNKNOWN', { detail: `This path serves the versions ${this.#values.join(', ')} (named ${this.#how()}).`, extensions: { versions: this.#values } });
  }

  /** For requests that name no version (CORS preflights). */
  fallback(): R {
    return this.#default ?? this.#first;
  }

  #how(): string {
    if (this.kind === 'header') return `in the ${this.name} header`;
    if (this.kind === 'query') return `in the query parameter ${this.name} (?${this.name}=${this.#values[0]})`;
    return `in the Accept header's "${this.name}" parameter (application/json; ${this.name}=${this.#values[0]})`;
  }

  /**
   * The version the query names. Given more than once it names none this path serves: the
   * gateway and the upstream could each read a different one.
   */
  #fromQuery(query: string): string | undefined {
    if (query.length <= 1) return undefined;
    let found: string | undefined;
    for (const pair of query.slice(1).split('&')) {
      const eq = pair.indexOf('=');
      const key = decode(eq === -1 ? pair : pair.slice(0, eq));
      if (key === undefined) continue;
      // Other spellings of the name (`API-Version`, `api-version[]`, `api-version.x`) are read as
      // it by some frameworks (ASP.NET, qs, PHP): they make the version ambiguous, never ignored.
      const cut = key.search(/[[.]/);
      const base = (cut === -1 ? key : key.slice(0, cut)).toLowerCase();
      if (base !== this.#lowerName) continue;
      if (found !== undefined || key !== this.name) return AMBIGUOUS;
      found = eq === -1 ? '' : (decode(pair.slice(eq + 1)) ?? AMBIGUOUS);
    }
    return found === '' ? undefined : found;
  }

  /**
   * The version the `Accept` header names: of the media ranges carrying the parameter, the one
   * with the highest q whose value this path serves (the value of the first, when none is).
   */
  #fromAccept(accept: string | undefined): string | undefined {
    if (accept === undefined || !accept.includes('=')) return undefined;
    let named: string | undefined;
    let best: string | undefined;
    let bestQ = 0;
    for (const range of accept.split(',')) {
      const { value, q } = rangeParameter(range, this.name);
      if (value === undefined || !(q > 0)) continue;
      named ??= value;
      if (q > bestQ && this.#byValue.has(value)) {
        best = value;
        bestQ = q;
      }
    }
    return best ?? named;
  }
}

/** Never a version value (they are letters, digits and `._~-`): a query naming the version twice, or badly encoded. */
const AMBIGUOUS = '\u0000';

/** The value of parameter `name` (lowercase) of one `Accept` media range, and the range's q. */
export function rangeParameter(range: string, name: string): { value: string | undefined; q: number } {
  const params = range.split(';');
  let value: string | undefined;
  let q = 1;
  for (let i = 1; i < params.length; i++) {
    const param = params[i]!;
    const eq = param.indexOf('=');
    if (eq === -1) continue;
    const key = param.slice(0, eq).trim().toLowerCase();
    let v = param.slice(eq + 1).trim();
    if (v.length >= 2 && v.charCodeAt(0) === 34 && v.charCodeAt(v.length - 1) === 34) v = v.slice(1, -1);
    if (key === name) value = v;
    else if (key === 'q') q = Number(v);
  }
  return { value, q };
}

function decode(text: string): string | undefined {
  if (!text.includes('%') && !text.includes('+')) return text;
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '));
  } catch {
    return undefined;
  }
}

function headerValue(value: string | string[] | undefined): string | undefined {
  if (value === undefined) return undefined;
  const text = (typeof value === 'string' ? value : value.join(', ')).trim();
  return text === '' ? undefined : text;
}

function describeSelect(kind: RouteSelect['kind'], name: string): string {
  return kind === 'header' ? `the ${name} header` : kind === 'query' ? `the query parameter '${name}'` : `the Accept parameter '${name}'`;
}

function hostMatcher(host: string): string | RegExp {
  if (!host.startsWith('*.')) return host;
  const rest = host.slice(2).replace(/[.]/g, '\\.');
  return new RegExp(`^[a-z0-9-]+\\.${rest}$`);
}
