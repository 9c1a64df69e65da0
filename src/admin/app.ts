import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
import { PROBLEM_CONTENT_TYPE, RampartError, toProblem } from '../errors/problem.js';
import type { PipelineRef } from '../gateway/plugin.js';
import type { Metrics } from '../observability/metrics.js';
import { registerConsole } from './console.js';

/**
 * The admin listener: liveness and readiness now, the admin API and console later. It binds to
 * 127.0.0.1 unless told otherwise.
 */
export async function createAdminApp(ref: PipelineRef, metrics?: Metrics): Promise<FastifyInstance> {
  const app = Fastify({ logger: false, genReqId: () => randomUUID(), requestIdHeader: false, return503OnClosing: false });
  const problem = (code: 'RMP_ROUTE_NOT_FOUND' | 'RMP_SHUTTING_DOWN' | 'RMP_INTERNAL', id: string, path: string) =>
    JSON.stringify(toProblem(new RampartError(code), id, path));

  app.addHook('onSend', (_request, reply, payload, done) => {
    reply.header('cache-control', 'no-store');
    reply.header('x-content-type-options', 'nosniff');
    done(null, payload);
  });

  // Live: the process answers. Never depends on upstreams or config state.
  app.get('/healthz', async () => ({ status: 'ok' }));

  // Ready: a config is loaded and the process is not draining.
  app.get('/readyz', async (request, reply) => {
    if (ref.draining) {
      return reply.code(503).type(PROBLEM_CONTENT_TYPE).send(problem('RMP_SHUTTING_DOWN', request.id, '/readyz'));
    }
    const p = ref.current;
    return { status: 'ready', configVersion: p.version, routes: p.routes.length };
  });

  // Prometheus scrapes this (the text format). The admin listener binds to 127.0.0.1 by default:
  // keep it on a private address.
  if (metrics !== undefined) {
    app.get('/metrics', async (_request, reply) => {
      const { contentType, text } = await metrics.exposition();
      return reply.type(contentType).send(text);
    });
  }

  // The console (the built web UI) at `/`, talking to the admin API on this listener.
  registerConsole(app);

  app.setNotFoundHandler((request, reply) => {
    reply.code(404).type(PROBLEM_CONTENT_TYPE).send(problem('RMP_ROUTE_NOT_FOUND', request.id, request.url.split('?')[0]!));
  });
  app.setErrorHandler((_error, request, reply) => {
    reply.code(500).type(PROBLEM_CONTENT_TYPE).send(problem('RMP_INTERNAL', request.id, request.url.split('?')[0]!));
  });
  return app;
}
