import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { RampartConfig } from '../config/schema.js';
import { parseDuration } from '../config/units.js';
import { isLoopbackHost } from '../config/semantics.js';
import { PROBLEM_CONTENT_TYPE, RampartError, toProblem } from '../errors/problem.js';
import type { PipelineRef } from '../gateway/plugin.js';
import { answerClientError } from '../gateway/app.js';
import type { TlsMaterial } from '../gateway/tls.js';
import type { IdentityRuntime } from '../identity/index.js';
import type { EventRing } from '../observability/event-ring.js';
import type { Events } from '../observability/events.js';
import type { Metrics } from '../observability/metrics.js';
import { createLimiter } from '../ratelimit/limiter.js';
import type { RedisSettings, Stores } from '../stores/stores.js';
import { registerAdminApi, type AlertSource } from './api.js';
import { AdminAuth } from './auth.js';
import { registerConsole } from './console.js';
import { registerManagementApi } from './manage.js';

export interface AdminAppOptions {
  ref: PipelineRef;
  metrics: Metrics;
  events: Events;
  ring: EventRing;
  logger: Logger;
  stores: Stores;
  redis: RedisSettings | undefined;
  identity: IdentityRuntime | undefined;
  alerts: AlertSource;
  /** The gateway's certificate, when `admin.tls`. */
  tls: TlsMaterial | undefined;
}


/**
 * The admin listener: liveness and readiness, Prometheus metrics, the admin API (docs/admin-api.md)
 * and the console. It binds to 127.0.0.1 unless told otherwise, and serves plain HTTP only there.
 */
export async function createAdminApp(options: AdminAppOptions): Promise<FastifyInstance> {
  const { ref } = options;
  const config: RampartConfig = ref.current.loaded.config;
  const admin = config.admin;
  const app = Fastify({
    logger: false,
    genReqId: () => randomUUID(),
    requestIdHeader: false,
    return503OnClosing: false,
    bodyLimit: 64 * 1024,
    // Shutdown does not wait for consoles: live streams and the sockets browsers open ahead of need.
    forceCloseConnections: true,
    // Unparseable HTTP gets a problem+json like on the gateway listener.
    clientErrorHandler: (error: Error, socket: Socket) => answerClientError(error, socket, options.logger),
    // Fastify's default removes unknown properties silently; a schema that says
    // additionalProperties: false means a refusal here (400 RMP_ADMIN_BAD_REQUEST).
    ajv: { customOptions: { removeAdditional: false } },
    ...(admin.tls && options.tls !== undefined ? { https: options.tls.options } : {}),
  }) as unknown as FastifyInstance;
  const problem = (error: RampartError, id: string, url: string) => JSON.stringify(toProblem(error, id, url.split('?')[0]!));

  app.addHook('onSend', (_request, reply, payload, done) => {
    reply.header('cache-control', 'no-store');
    reply.header('x-content-type-options', 'nosniff');
    done(null, payload);
  });

  // Plain HTTP on loopback: only requests addressed to this machine by a loopback name. A page on
  // another site whose DNS name resolves to 127.0.0.1 (DNS rebinding) sends its own name as Host.
  if (!admin.tls) {
    const own = admin.listen.host.toLowerCase();
    app.addHook('onRequest', (request, reply, done) => {
      const host = hostName(request.headers.host);
      if (host !== undefined && (host === own || isLoopbackHost(host) || host === '[::1]')) return done();
      reply.code(421).type(PROBLEM_CONTENT_TYPE).send(problem(new RampartError('RMP_ADMIN_HOST_REFUSED'), request.id, request.url));
    });
  }

  // Live: the process answers. Never depends on upstreams or config state.
  app.get('/healthz', async () => ({ status: 'ok' }));

  // Ready: a config is loaded and the process is not draining.
  app.get('/readyz', async (request, reply) => {
    if (ref.draining) {
      return reply.code(503).type(PROBLEM_CONTENT_TYPE).send(problem(new RampartError('RMP_SHUTTING_DOWN'), request.id, '/readyz'));
    }
    const p = ref.current;
    return { status: 'ready', configVersion: p.version, routes: p.routes.length };
  });

  const auth = new AdminAuth({
    token: admin.token,
    identity: options.identity,
    role: admin.role,
    ttlMs: parseDuration(admin.session.ttl),
    idleMs: parseDuration(admin.session.idleTimeout),
    events: options.events,
    logger: options.logger,
    loginLimiter:
      options.identity?.service.limits.login ??
      createLimiter({ name: 'admin-login', algorithm: 'gcra', limit: 10, window: '1m', store: 'auto', onStoreFailure: 'open' }, { stores: options.stores, redis: options.redis, logger: options.logger }),
  });

  // Prometheus scrapes this (the text format). On loopback it is open; on any other address
  // (which needs admin.tls) it needs the admin token like the rest of the admin API.
  const metricsOpen = isLoopbackHost(admin.listen.host);
  app.get('/metrics', async (request, reply) => {
    if (!metricsOpen) await auth.authenticate(request);
    const { contentType, text } = await options.metrics.exposition();
    return reply.type(contentType).send(text);
  });

  const apiDeps = {
    ref,
    metrics: options.metrics,
    events: options.events,
    ring: options.ring,
    identity: options.identity,
    alerts: options.alerts,
    auth,
    sessionTtlMs: parseDuration(admin.session.ttl),
  };
  app.setNotFoundHandler((request, reply) => {
    reply.code(404).type(PROBLEM_CONTENT_TYPE).send(problem(new RampartError('RMP_ROUTE_NOT_FOUND'), request.id, request.url));
  });
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const refusal = adminError(error);
    if (refusal.code === 'RMP_INTERNAL') options.logger.error({ err: error, requestId: request.id, path: request.url.split('?')[0] }, 'admin API failed');
    reply.code(refusal.status).headers(refusal.headers ?? {}).type(PROBLEM_CONTENT_TYPE).send(problem(refusal, request.id, request.url));
  });
  // The admin API in its own context: its authentication hook runs for every route of it — decided
  // by the route matched, never by how the URL is spelled (percent-encoding, absolute form) — and
  // for nothing else. Only the login routes say `adminPublic`.
  app.decorateRequest('admin', null);
  await app.register(async (api) => {
    api.addHook('onRequest', async (request) => {
      if (request.routeOptions.config.adminPublic === true) return;
      request.admin = await auth.authenticate(request);
    });
    registerAdminApi(api, apiDeps);
    registerManagementApi(api, apiDeps);
  });
  // The console (the built web UI) at `/`, talking to the admin API on this listener.
  registerConsole(app);
  app.addHook('onClose', async () => auth.close());
  return app;
}

/** The host name of a Host header, lowercased, without its port. */
function hostName(header: string | undefined): string | undefined {
  if (header === undefined || header.length > 300) return undefined;
  const h = header.trim().toLowerCase();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    return end === -1 ? undefined : h.slice(0, end + 1);
  }
  const colon = h.indexOf(':');
  return colon === -1 ? h : h.slice(0, colon);
}

/** Errors of the admin API as the problem the caller gets: validation and body errors are the caller's. */
function adminError(error: FastifyError): RampartError {
  if (error instanceof RampartError) return error;
  if (error.validation !== undefined) {
    const where = error.validationContext ?? 'body';
    return new RampartError('RMP_ADMIN_BAD_REQUEST', {
      extensions: { errors: error.validation.slice(0, 20).map((v) => ({ pointer: `/${where}${v.instancePath}`, detail: v.message ?? 'is not valid' })) },
    });
  }
  if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return new RampartError('RMP_BODY_TOO_LARGE');
  if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return new RampartError('RMP_UNSUPPORTED_MEDIA_TYPE', { detail: 'Send application/json.' });
  if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) return new RampartError('RMP_ADMIN_BAD_REQUEST', { detail: 'The request body is not valid JSON.' });
  return new RampartError('RMP_INTERNAL');
}
