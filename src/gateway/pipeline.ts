import type { IncomingHttpHeaders } from 'node:http';
import type { Metrics } from '../observability/metrics.js';
import { resolve } from 'node:path';
import type { FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import type { LoadedConfig } from '../config/load.js';
import { ConfigError, type ConfigIssue, type ConfigPath } from '../config/errors.js';
import { RampartError } from '../errors/problem.js';
import { resolvePolicies, withPolicyDefaults } from '../config/policies.js';
import type { RouteConfig } from '../config/schema.js';
import type { Events } from '../observability/events.js';
import type { Phase, PolicyContext, PolicyHooks, ResponseBuffer } from '../policies/define.js';
import { compileTrust, type TrustFn } from './client-ip.js';
import type { BufferedResponse, RequestContext } from './context.js';
import { templateMapper } from './path-template.js';
import { createRouter, RouteConflictError, type RouteSelect, type Router } from './router.js';
import { compileRouteVersion, type RouteVersion } from './versions.js';
import { Upstream } from './proxy/upstream.js';
import { Stores, type RedisSettings } from '../stores/stores.js';
import { parseDuration } from '../config/units.js';
import { identityLink, type IdentityRuntime } from '../identity/index.js';
import { identityRoutes, identityVersions, type BuiltinRoute, type ErrorRenderer, type RouteHandler } from '../identity/routes.js';

export type RequestHook = (ctx: RequestContext) => void | Promise<void>;
export type ResponseHook = (ctx: RequestContext, reply: FastifyReply) => void;
export type BodyFilter = (ctx: RequestContext, response: BufferedResponse) => void;
export type HeadHook = (ctx: RequestContext, status: number, headers: IncomingHttpHeaders) => void;

/** The bound on held upstream answers when no policy of the route sets one (`limits` disabled). */
export const DEFAULT_RESPONSE_BUFFER: ResponseBuffer = Object.freeze({ limit: 1_048_576, oversize: 'refuse' });

/** A route with everything the per-request path needs, computed at config load. */
export interface CompiledRoute {
  readonly name: string;
  readonly path: string;
  readonly methods: readonly string[];
  readonly host: string | undefined;
  /** The route's API version, when it has one. */
  readonly version: RouteVersion | undefined;
  /** How requests choose this route among versions sharing its path (header / media type). */
  readonly select: RouteSelect | undefined;
  readonly upstream: Upstream | undefined;
  /** Policies in execution order, for display (`rampart validate`). */
  readonly policies: readonly { name: string; phase: Phase; priority: number }[];
  readonly requestHooks: readonly RequestHook[];
  /** The policy of each request hook (for "denied by"): the authentication alternatives share one, named `jwt|api-key`. */
  readonly requestHookNames: readonly string[];
  readonly responseHooks: readonly ResponseHook[];
  readonly logHooks: readonly ResponseHook[];
  /** `responseBody` filters, in response-phase order (reversed, like `responseHooks`). */
  readonly bodyFilters: readonly BodyFilter[];
  /** `responseHead` hooks, in response-phase order. */
  readonly headHooks: readonly HeadHook[];
  /** How much of an upstream answer may be held for filters and checks, and what happens past it. */
  readonly responseBuffer: ResponseBuffer;
  /** Bytes of an answer refused at its head kept for the log. */
  readonly keepRefusedBody: number;
  /** The route answers CORS preflights itself (it runs the `cors` policy). */
  readonly handlesPreflight: boolean;
  /** Served over plain HTTP too (`allowInsecure: true`). */
  readonly allowInsecure: boolean;
  /** Request headers never forwarded (the credentials of every authentication policy of the route). */
  readonly hiddenHeaders: readonly string[] | undefined;
  /** A built-in route's own handler (identity, JWKS): it answers instead of an upstream. */
  readonly handler: RouteHandler | undefined;
  /** How the route answers errors when not as problem+json (the OAuth endpoints: RFC 6749 §5.2). */
  readonly renderError: ErrorRenderer | undefined;
  /** The path sent upstream (before the target's base path and the query). */
  mapPath(ctx: RequestContext): string;
}

export interface PipelineDeps {
  logger: Logger;
  events: Events;
  /** Counters and connections that outlive a reload (the runtime's). Without it the pipeline makes and closes its own. */
  stores?: Stores;
  /** The running identity service (the runtime's); without it, identity routes answer 503. */
  identity?: IdentityRuntime | undefined;
  /** The process's metrics (the runtime's): the observe phase feeds them. */
  metrics?: Metrics | undefined;
}

/**
 * Everything one version of the config compiles to. A request holds on to the pipeline it started
 * with, so a reload never changes a request midway; a retired pipeline closes its pools once its
 * last request is done.
 */
export class Pipeline {
  readonly version: number;
  readonly loaded: LoadedConfig;
  readonly routes: readonly CompiledRoute[];
  /** Runs the defaults for requests no route matches. */
  readonly fallback: CompiledRoute;
  readonly router: Router<CompiledRoute>;
  readonly upstreams: ReadonlyMap<string, Upstream>;
  readonly trust: TrustFn | undefined;
  /** `server.tracing`: requests carry a W3C trace context (see trace-context.ts). */
  readonly tracing: boolean;
  readonly logger: Logger;
  /** Where the engine's own security events go (an answer sent unfiltered past its bound). */
  readonly events: Events | undefined;
  readonly metrics: Metrics | undefined;
  /** When this config was built (ISO 8601). */
  readonly loadedAt = new Date().toISOString();
  #inflight = 0;
  #retired = false;
  #drained: (() => void) | undefined;
  readonly #closers: (() => void | Promise<void>)[];

  constructor(init: {
    version: number;
    loaded: LoadedConfig;
    routes: CompiledRoute[];
    fallback: CompiledRoute;
    router: Router<CompiledRoute>;
    upstreams: Map<string, Upstream>;
    closers: (() => void | Promise<void>)[];
    logger: Logger;
    events?: Events;
    metrics?: Metrics | undefined;
  }) {
    this.version = init.version;
    this.loaded = init.loaded;
    this.routes = init.routes;
    this.fallback = init.fallback;
    this.router = init.router;
    this.upstreams = init.upstreams;
    this.trust = compileTrust(init.loaded.config.server.trustedProxies);
    this.tracing = init.loaded.config.server.tracing;
    this.#closers = init.closers;
    this.logger = init.logger;
    this.events = init.events;
    this.metrics = init.metrics;
  }

  get inflight(): number {
    return this.#inflight;
  }

  acquire(): void {
    this.#inflight++;
  }

  release(): void {
    if (--this.#inflight === 0 && this.#drained !== undefined) this.#drained();
  }

  /**
   * Stops this pipeline once the requests using it are done (or `deadlineMs` passes): closes
   * upstream pools and policy resources.
   */
  async retire(deadlineMs: number): Promise<void> {
    if (this.#retired) return;
    this.#retired = true;
    if (this.#inflight > 0) {
      await new Promise<void>((resolveDrain) => {
        const timer = setTimeout(resolveDrain, deadlineMs);
        timer.unref();
        this.#drained = () => {
          clearTimeout(timer);
          resolveDrain();
        };
      });
    }
    await this.close();
  }

  async close(): Promise<void> {
    this.#retired = true;
    await Promise.allSettled([...this.#closers.map((c) => c()), ...[...this.upstreams.values()].map((u) => u.close())]);
  }
}

let versions = 0;

/**
 * Compiles a loaded config: upstream pools, one policy instance per route, the router. Every
 * error is a ConfigError pointing into the file, so `rampart validate` finds them too.
 */
export function buildPipeline(loaded: LoadedConfig, deps: PipelineDeps): Pipeline {
  const config = loaded.config;
  const issues: ConfigIssue[] = [];
  const closers: (() => void | Promise<void>)[] = [];
  const upstreams = new Map<string, Upstream>();
  const dataDir = resolve(loaded.dir, config.dataDir);
  let stores = deps.stores;
  if (stores === undefined) {
    const own = new Stores(deps.logger, { connect: false });
    closers.push(() => own.close());
    stores = own;
  }
  const redis = config.redis === undefined ? undefined : redisSettings(config.redis);
  // A running identity service keeps the settings it started with (restart to change them).
  const identityConfig = deps.identity?.config ?? (config.identity?.enabled === true ? config.identity : undefined);
  const identity = identityConfig === undefined ? undefined : (deps.identity?.link ?? identityLink(identityConfig));
  const builtins: BuiltinRoute[] = identityConfig === undefined ? [] : identityRoutes(identityConfig, deps.identity?.service);
  // The built-in routes' versions have names no config can spell (`identity:…`). Their dates are
  // the gateway's to apply, so they are taken from this config (a reload changes them).
  const lifecycle = config.identity?.enabled === true ? config.identity : identityConfig;
  const apiVersions = lifecycle === undefined ? config.versions : { ...config.versions, ...identityVersions(lifecycle) };
  const versioned = [...builtins.map((b) => b.route), ...config.routes].map((r) => ({ path: r.match.path, host: r.match.host, version: r.version }));

  const compile = (route: RouteConfig | undefined, index: number, builtin?: BuiltinRoute): CompiledRoute => {
    const name = route?.name ?? '*';
    const version = route === undefined ? undefined : compileRouteVersion(route, apiVersions, versioned);
    const ctx: PolicyContext = {
      route: name,
      mode: config.mode,
      configDir: loaded.dir,
      dataDir,
      logger: deps.logger,
      events: deps.events,
      stores,
      redis,
      identity,
      proxied: route?.upstream !== undefined,
      openapi: route?.upstream === undefined ? undefined : config.upstreams[route.upstream]?.openapi,
      version,
    };
    const requestHooks: RequestHook[] = [];
    const requestHookNames: string[] = [];
    const responseHooks: ResponseHook[] = [];
    const logHooks: ResponseHook[] = [];
    const bodyFilters: BodyFilter[] = [];
    const headHooks: HeadHook[] = [];
    let responseBuffer = DEFAULT_RESPONSE_BUFFER;
    let keepRefusedBody = 0;
    const policies: { name: string; phase: Phase; priority: number }[] = [];
    const resolvedPolicies = resolvePolicies(config, route, index, builtin !== undefined);
    // A built-in route's problems point at the section that made it.
    const where = (path: ConfigPath): ConfigPath => (builtin !== undefined ? ['identity'] : path);
    const hidden: string[] = [];
    const authHooks: RequestHook[] = [];
    const authNames: string[] = [];
    const anyOfAuth = (c: RequestContext) => authenticateAnyOf(authHooks, authNames, c);
    let authenticated = false;
    let authGroup: RequestHook | undefined;
    for (const resolved of resolvedPolicies) {
      const { definition } = resolved;
      // `public: true`: no authentication at all on this route, whatever `defaults` says; a route
      // cannot be public and list an authentication policy of its own.
      if (definition.phase === 'authenticate') {
        if (route?.public === true) {
          if (Object.hasOwn(route.policies, definition.name) && route.policies[definition.name] !== false) {
            issues.push(loaded.issue(where(resolved.path), `route '${route.name}' says 'public: true' and lists the authentication policy '${definition.name}': remove one of them`));
          }
          continue;
        }
        authenticated = true;
      }
      let hooks: PolicyHooks;
      try {
        hooks = definition.create(withPolicyDefaults(definition, resolved.options) as never, ctx);
      } catch (error) {
        // Problems found in a file the policy reads (an OpenAPI document) point into that file.
        if (error instanceof ConfigError) {
          issues.push(...error.issues.map((i) => ({ ...i, message: `policy '${definition.name}' of route '${name}': ${i.message}` })));
          continue;
        }
        issues.push(loaded.issue(where(resolved.path), `policy '${definition.name}'${builtin !== undefined ? ` on the built-in route '${name}'` : ''}: ${(error as Error).message}`));
        continue;
      }
      // A policy with nothing to do on this route (openapi without a document, versioning without a version) is not run or listed.
      if (Object.keys(hooks).length === 0) continue;
      policies.push({ name: definition.name, phase: definition.phase, priority: definition.priority });
      if (hooks.request && definition.phase === 'authenticate') {
        // Several authentication policies on one route are alternatives, tried in order.
        if (authHooks.length === 0) {
          requestHooks.push((c) => anyOfAuth(c));
          requestHookNames.push(definition.name);
        } else requestHookNames[requestHooks.indexOf(authGroup!)] += `|${definition.name}`;
        authHooks.push(hooks.request.bind(hooks));
        authGroup ??= requestHooks[requestHooks.length - 1];
        authNames.push(definition.name);
      } else if (hooks.request) {
        requestHooks.push(hooks.request.bind(hooks));
        requestHookNames.push(definition.name);
      }
      if (hooks.response) responseHooks.push(hooks.response.bind(hooks));
      if (hooks.log) logHooks.push(hooks.log.bind(hooks));
      if (hooks.responseBody) bodyFilters.push(hooks.responseBody.bind(hooks));
      if (hooks.responseHead) headHooks.push(hooks.responseHead.bind(hooks));
      if (hooks.responseBuffer) responseBuffer = hooks.responseBuffer;
      if (hooks.keepRefusedBody !== undefined) keepRefusedBody = Math.max(keepRefusedBody, hooks.keepRefusedBody);
      if (hooks.close) closers.push(hooks.close.bind(hooks));
      if (hooks.hides) hidden.push(...hooks.hides);
    }
    if (route !== undefined && !route.public && !authenticated) {
      issues.push(
        loaded.issue(['routes', index, 'name'], `route '${route.name}' has no authentication: add an authentication policy (jwt) to it or to defaults, or say 'public: true' if it is meant to be open`),
      );
    }
    // The response phase runs in reverse, like unwinding a filter chain.
    responseHooks.reverse();
    bodyFilters.reverse();
    headHooks.reverse();
    let upstream: Upstream | undefined;
    if (route?.upstream !== undefined) {
      upstream = upstreams.get(route.upstream);
      if (upstream === undefined) {
        upstream = new Upstream(route.upstream, config.upstreams[route.upstream]!, deps.logger);
        upstreams.set(route.upstream, upstream);
      }
    }
    return {
      name,
      path: route?.match.path ?? '/*',
      methods: route?.match.methods ?? [],
      host: route?.match.host,
      version,
      select: version?.select,
      upstream,
      policies,
      requestHooks,
      requestHookNames,
      responseHooks,
      logHooks,
      bodyFilters,
      headHooks,
      responseBuffer,
      keepRefusedBody,
      handlesPreflight: policies.some((p) => p.name === 'cors'),
      allowInsecure: route?.allowInsecure ?? false,
      hiddenHeaders: hidden.length === 0 ? undefined : [...new Set(hidden)],
      handler: builtin?.handler,
      renderError: builtin?.renderError,
      mapPath: route === undefined ? (c) => c.path : compilePathMapper(route),
    };
  };

  // Built-in routes first: a user route that claims one of their paths is the one reported.
  const routes = [...builtins.map((b) => compile(b.route, -1, b)), ...config.routes.map((route, i) => compile(route, i))];
  const fallback = compile(undefined, -1);
  let router: Router<CompiledRoute> | undefined;
  try {
    router = createRouter(routes);
  } catch (error) {
    if (!(error instanceof RouteConflictError)) throw error;
    issues.push(loaded.issue(['routes', error.routeIndex - builtins.length, 'match'], `${error.message}${/built-in|identity-/.test(error.message) ? ' (a route of the identity service)' : ''}`));
  }
  if (issues.length > 0 || router === undefined) {
    const pending = new Pipeline({ version: 0, loaded, routes, fallback, router: router ?? createRouter([]), upstreams, closers, logger: deps.logger });
    void pending.close();
    throw new ConfigError(issues);
  }
  return new Pipeline({ version: ++versions, loaded, routes, fallback, router, upstreams, closers, logger: deps.logger, events: deps.events, metrics: deps.metrics });
}

/**
 * `stripPrefix` removes a literal prefix; `rewrite` rebuilds the path from the match's raw
 * (normalized, still percent-encoded) segments, so no decoding happens between what was
 * validated and what is forwarded.
 */
function compilePathMapper(route: RouteConfig): (ctx: RequestContext) => string {
  if (route.stripPrefix !== undefined) {
    const prefix = route.stripPrefix;
    const n = prefix.length;
    // The config only allows whole-segment prefixes, so the rest is '' or starts with '/'.
    return (ctx) => {
      const rest = ctx.path.slice(n);
      return rest.charCodeAt(0) === 47 ? rest : `/${rest}`;
    };
  }
  if (route.rewrite !== undefined) return templateMapper(route.match.path, route.rewrite);
  return (ctx) => ctx.path;
}

export function redisSettings(redis: NonNullable<LoadedConfig['config']['redis']>): RedisSettings {
  return { url: redis.url, keyPrefix: redis.keyPrefix, connectTimeoutMs: parseDuration(redis.connectTimeout), commandTimeoutMs: parseDuration(redis.commandTimeout) };
}

/**
 * The authentication policies of a route, as alternatives in order: the first that establishes a
 * consumer wins. A policy that finds no credentials of its kind (it throws RMP_AUTH_REQUIRED)
 * passes to the next; bad credentials of any kind are refused at once. When none finds any: 401
 * with every policy's challenge, unless one of them allows anonymous requests.
 */
function authenticateAnyOf(hooks: readonly RequestHook[], names: readonly string[], ctx: RequestContext, from = 0, missing?: RampartError, anonymous = false): void | Promise<void> {
  // Which policy refused, for rampart_auth_failures_total (the last one tried when none found credentials).
  if (hooks.length === 1) {
    ctx.authPolicy = names[0];
    return hooks[0]!(ctx);
  }
  for (let i = from; i < hooks.length; i++) {
    ctx.authPolicy = names[i];
    let result: void | Promise<void>;
    try {
      result = hooks[i]!(ctx);
    } catch (error) {
      if (!isMissing(error)) throw error;
      missing = mergeChallenges(missing, error);
      continue;
    }
    if (result instanceof Promise) {
      return result.then(
        () => (ctx.consumer !== undefined ? undefined : authenticateAnyOf(hooks, names, ctx, i + 1, missing, true)),
        (error: unknown) => {
          if (!isMissing(error)) throw error;
          return authenticateAnyOf(hooks, names, ctx, i + 1, mergeChallenges(missing, error), anonymous);
        },
      );
    }
    if (ctx.consumer !== undefined) return undefined;
    anonymous = true;
  }
  if (!anonymous && missing !== undefined) throw missing;
  return undefined;
}

function isMissing(error: unknown): error is RampartError {
  return error instanceof RampartError && error.code === 'RMP_AUTH_REQUIRED';
}

function mergeChallenges(previous: RampartError | undefined, next: RampartError): RampartError {
  if (previous === undefined) return next;
  const a = previous.headers?.['www-authenticate'];
  const b = next.headers?.['www-authenticate'];
  return new RampartError('RMP_AUTH_REQUIRED', { detail: previous.detail, headers: { 'www-authenticate': [a, b].filter((x) => x !== undefined).join(', ') } });
}
