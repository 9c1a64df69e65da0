import type { RouteConfig } from '../config/schema.js';
import type { VersionConfig } from '../policies/versioning/schema.js';
import type { RequestContext } from './context.js';
import type { RouteSelect } from './router.js';
import { templateMapper } from './path-template.js';

/**
 * A route's version as the per-request path needs it, computed once at config load: the header
 * strings, the sunset instant, how to find the successor's path, and how requests select it.
 */
export interface RouteVersion {
  readonly name: string;
  /** `Deprecation` (RFC 9745 structured date: `@<unix seconds>`), when the version has `deprecated`. */
  readonly deprecation: string | undefined;
  /** `Sunset` (RFC 8594 HTTP-date), when the version has `sunset`. */
  readonly sunset: string | undefined;
  /** The sunset instant (ms since the epoch), compared with `Date.now()` per request. */
  readonly sunsetMs: number | undefined;
  /** The sunset as RFC 3339, for the 410's body. */
  readonly sunsetIso: string | undefined;
  /** Link items that do not depend on the request (`<…>; rel="deprecation"`), joined. */
  readonly links: string | undefined;
  /** The successor version's name. */
  readonly successor: string | undefined;
  /** The path of this request's counterpart in the successor version, when there is one (with `?name=value` for a successor chosen by query). */
  readonly successorPath: ((ctx: RequestContext) => string) | undefined;
  /** How requests choose the version, when it shares its paths with others (header / media type). */
  readonly select: RouteSelect | undefined;
}

/** A route and the version name it gives, for working out successor paths. */
export interface VersionedRoute {
  readonly path: string;
  readonly host: string | undefined;
  readonly version: string | undefined;
}

/**
 * Compiles a route's version. The successor path is, in order: the route's `successorPath`
 * template; the request path with this version's `prefix` swapped for the successor's, when a
 * route of the successor serves that path; the same path, when the successor is chosen by
 * `select` and serves this path too; else there is none (the Link names no successor-version).
 * `versions` and every reference in it were checked at load.
 */
export function compileRouteVersion(route: RouteConfig, versions: Readonly<Record<string, VersionConfig>>, all: readonly VersionedRoute[]): RouteVersion | undefined {
  const name = route.version;
  if (name === undefined) return undefined;
  const version = versions[name]!;
  const deprecatedMs = version.deprecated === undefined ? undefined : Date.parse(version.deprecated);
  const sunsetMs = version.sunset === undefined ? undefined : Date.parse(version.sunset);
  const successor = version.successor === undefined ? undefined : { name: version.successor, ...versions[version.successor]! };
  let successorPath: ((ctx: RequestContext) => string) | undefined;
  if (successor !== undefined) {
    const serves = (path: string) => all.some((r) => r.version === successor.name && r.host === route.match.host && samePattern(r.path, path));
    if (route.successorPath !== undefined) successorPath = templateMapper(route.match.path, route.successorPath);
    else if (version.prefix !== undefined && successor.prefix !== undefined && serves(successor.prefix + route.match.path.slice(version.prefix.length))) {
      const from = version.prefix.length;
      const to = successor.prefix;
      successorPath = (ctx) => to + ctx.path.slice(from);
    } else if (version.select !== undefined && successor.select !== undefined && serves(route.match.path)) {
      // A successor chosen by query parameter can be named in the link itself.
      const query = successor.select.query === undefined ? '' : `?${encodeURIComponent(successor.select.query)}=${encodeURIComponent(successor.select.value)}`;
      successorPath = query === '' ? (ctx) => ctx.path : (ctx) => ctx.path + query;
    }
  }
  return Object.freeze({
    name,
    deprecation: deprecatedMs === undefined ? undefined : `@${Math.floor(deprecatedMs / 1000)}`,
    sunset: sunsetMs === undefined ? undefined : new Date(sunsetMs).toUTCString(),
    sunsetMs,
    sunsetIso: sunsetMs === undefined ? undefined : new Date(sunsetMs).toISOString(),
    links: version.link === undefined || deprecatedMs === undefined ? undefined : `<${version.link}>; rel="deprecation"`,
    successor: successor?.name,
    successorPath,
    select:
      version.select === undefined
        ? undefined
        : Object.freeze({
            kind: version.select.header !== undefined ? ('header' as const) : version.select.mediaType !== undefined ? ('mediaType' as const) : ('query' as const),
            name: version.select.header ?? version.select.mediaType ?? version.select.query!,
            value: version.select.value,
            isDefault: version.default,
          }),
  });
}

/** `/a/:x` and `/a/:y` are the same pattern to the router. */
export function samePattern(a: string, b: string): boolean {
  return a.replace(/:[^/]+/g, ':') === b.replace(/:[^/]+/g, ':');
}

/** Characters a path may carry raw that have no place between `<` and `>` in a Link header. */
const UNSAFE_IN_LINK = /[^A-Za-z0-9\-._~!$&'()*+,;=:@/?%]/g;

/** A path made safe for `Link: <…>`: anything outside RFC 3986's path characters is percent-encoded. */
export function linkTarget(path: string): string {
  UNSAFE_IN_LINK.lastIndex = 0;
  if (!UNSAFE_IN_LINK.test(path)) return path;
  return path.replace(UNSAFE_IN_LINK, (char) => {
    const code = char.charCodeAt(0);
    // Node reads the request target as latin1: one character per byte.
    return code < 256 ? `%${code.toString(16).toUpperCase().padStart(2, '0')}` : encodeURIComponent(char);
  });
}
