import type { Static, TObject } from '@sinclair/typebox';
import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import type { Events } from '../observability/events.js';
import type { BufferedResponse, RequestContext } from '../gateway/context.js';
import type { KeyObject } from 'node:crypto';
import type { RedisSettings, Stores } from '../stores/stores.js';
import type { Revocation } from '../revocation/revocation.js';
import type { KeySource } from './api-key/policy.js';
import type { RouteVersion } from '../gateway/versions.js';

/** What the jwt policy needs of the built-in identity service (`jwt: { identity: true }`). */
export interface IdentityLink {
  readonly issuer: string;
  readonly audience: readonly string[];
  readonly algorithms: readonly string[];
  /** The service's published keys; undefined when it is not running (`rampart validate`). */
  readonly keys: { readonly generation: number; verificationKey(kid: string | undefined): KeyObject } | undefined;
  /** Where the service records revocations (the jwt policy must read the same store). */
  readonly revocation: Revocation | undefined;
  /** The service's API keys (`api-key: { identity: true }`); undefined when it is not running. */
  readonly apiKeys: KeySource | undefined;
}

/** The phases of DESIGN.md, in the order a request passes through them. */
export const PHASES = [
  'transport',
  'cors',
  'rate-limit-pre',
  'authenticate',
  'rate-limit',
  'authorize',
  'validate',
  'forward',
  'respond',
  'observe',
] as const;
export type Phase = (typeof PHASES)[number];

/** What `create()` is given besides its options: built once per route at config load. */
export interface PolicyContext {
  /** Route name, or `*` for the requests no route matches (404/405, which still get the defaults). */
  readonly route: string;
  readonly mode: 'production' | 'development';
  readonly configDir: string;
  readonly dataDir: string;
  readonly logger: Logger;
  readonly events: Events;
  /** Counters and connections shared by every route and kept across reloads. */
  readonly stores: Stores;
  /** The top-level `redis` settings, when Redis is configured. */
  readonly redis: RedisSettings | undefined;
  /** The built-in identity service, when the config has an enabled `identity` section. */
  readonly identity: IdentityLink | undefined;
  /** The route forwards to an upstream (response filters only apply to proxied answers). */
  readonly proxied: boolean;
  /** The OpenAPI document the route's upstream names (`upstreams.<name>.openapi`), relative to `configDir`. */
  readonly openapi: string | undefined;
  /** The route's API version (its `version`, resolved against `versions`), when it has one. */
  readonly version?: RouteVersion | undefined;
}

/**
 * What a policy instance does per request. Each hook is optional; a request hook denies by throwing
 * a RampartError and may return a promise only when it really waits on something.
 */
export interface PolicyHooks {
  /** Before forwarding, in phase order. */
  request?(ctx: RequestContext): void | Promise<void>;
  /** Before the response headers are written, for every response (upstream, error, local). */
  response?(ctx: RequestContext, reply: FastifyReply): void;
  /**
   * Filters the upstream's JSON answer before anything of it is sent (redaction, allowlists,
   * secret detection): the proxy holds the body (within the route's bound), parses it once, runs
   * every filter in response-phase order, and serializes it again only if one changed it. May
   * throw a RampartError to refuse the answer.
   */
  responseBody?(ctx: RequestContext, response: BufferedResponse): void;
  /**
   * Judges a proxied upstream answer by its status and headers, before any of its body is read or
   * sent (upstream error sanitizing). Throwing a RampartError refuses the answer: its body is read
   * and discarded (so the connection is reused; cut past the route's response bound), and the
   * client gets the problem instead. Runs for every proxied answer, so it must be cheap.
   */
  responseHead?(ctx: RequestContext, status: number, headers: IncomingHttpHeaders): void;
  /**
   * Bytes of an answer this policy refuses in `responseHead` kept for the log (the upstream's own
   * error text, for operators; never sent). The route keeps the largest of its policies'.
   */
  keepRefusedBody?: number;
  /**
   * How much of an upstream answer the route may hold for its `responseBody` filters, and what
   * happens past it (set by `limits`; when no policy sets it, 1 MiB and `refuse`).
   */
  responseBuffer?: ResponseBuffer;
  /** After the response is finished or the client went away. Must never throw. */
  log?(ctx: RequestContext, reply: FastifyReply): void;
  /** When the config that created it is retired. */
  close?(): void | Promise<void>;
  /** Request headers never forwarded on this route (credentials), whichever policy decides. */
  hides?: readonly string[];
}

/** The bound on held upstream answers (see `PolicyHooks.responseBuffer`). */
export interface ResponseBuffer {
  /** Largest answer held, in bytes (after decompression). */
  readonly limit: number;
  /** Past the limit: `refuse` answers 502 RMP_RESPONSE_TOO_LARGE; `stream` sends it unfiltered, with an event. */
  readonly oversize: 'refuse' | 'stream';
}

export interface PolicyDefinition<S extends TObject = TObject> {
  readonly name: string;
  readonly phase: Phase;
  /** Within a phase, higher runs first; ties run in name order. */
  readonly priority: number;
  readonly description: string;
  /** Applied to every route unless `defaults.<name>: false`. */
  readonly enabledByDefault: boolean;
  readonly schema: S;
  create(options: Static<S>, ctx: PolicyContext): PolicyHooks;
}

export function definePolicy<S extends TObject>(definition: {
  name: string;
  phase: Phase;
  priority?: number;
  description: string;
  enabledByDefault?: boolean;
  schema: S;
  create(options: Static<S>, ctx: PolicyContext): PolicyHooks;
}): PolicyDefinition<S> {
  if (!/^[a-z][a-z0-9-]*$/.test(definition.name)) throw new TypeError(`invalid policy name '${definition.name}'`);
  if (!PHASES.includes(definition.phase)) throw new TypeError(`policy '${definition.name}': unknown phase '${definition.phase}'`);
  return Object.freeze({ priority: 0, enabledByDefault: false, ...definition });
}
