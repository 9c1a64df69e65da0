import FindMyWay from 'find-my-way';
import type { HTTPMethod } from 'find-my-way';

/** A route as the router needs it. */
export interface RoutableRoute {
  readonly name: string;
  readonly path: string;
  readonly methods: readonly string[];
  readonly host: string | undefined;
}

export interface RouteMatch<R> {
  route: R;
  params: Record<string, string | undefined>;
}

export interface Router<R extends RoutableRoute> {
  /** The route for a method, normalized path and host (no port), or null. */
  find(method: string, path: string, host: string | undefined): RouteMatch<R> | null;
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
  routes.forEach((route, index) => {
    const constraints = route.host === undefined ? undefined : { host: hostMatcher(route.host) };
    if (constraints !== undefined) hosted = true;
    for (const method of route.methods) {
      methods.add(method);
      try {
        fmw.on(method as HTTPMethod, route.path, constraints === undefined ? {} : { constraints }, noop, route);
      } catch (error) {
        const other = routes.findIndex(
          (r, i) => i < index && r.methods.includes(method) && samePattern(r.path, route.path) && r.host === route.host,
        );
        const detail = other === -1 ? (error as Error).message : `${method} ${route.path}${route.host ? ` on ${route.host}` : ''} is already taken by route '${routes[other]!.name}'`;
        throw new RouteConflictError(index, detail);
      }
    }
  });
  const methodList = [...methods].sort();

  const lookup = (method: string, path: string, host: string | undefined) =>
    hosted ? fmw.find(method as HTTPMethod, path, { host: host ?? '' }) : fmw.find(method as HTTPMethod, path);

  return {
    find(method, path, host) {
      const found = lookup(method, path, host);
      if (found === null) return null;
      return { route: found.store as R, params: found.params };
    },
    allowed(path, host) {
      return methodList.filter((m) => lookup(m, path, host) !== null);
    },
  };
}

function noop(): void {}

/** `/a/:x` and `/a/:y` are the same pattern to the router. */
function samePattern(a: string, b: string): boolean {
  return a.replace(/:[^/]+/g, ':') === b.replace(/:[^/]+/g, ':');
}

function hostMatcher(host: string): string | RegExp {
  if (!host.startsWith('*.')) return host;
  const rest = host.slice(2).replace(/[.]/g, '\\.');
  return new RegExp(`^[a-z0-9-]+\\.${rest}$`);
}
