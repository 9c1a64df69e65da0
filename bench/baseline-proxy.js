// The benchmark's baseline: a bare Fastify 5 app with @fastify/http-proxy, no logging, no policies.
// It forwards /api/* to the upstream with the /api prefix stripped, as the Rampart routes do.
// Usage: node bench/baseline-proxy.js  (env: PORT, UPSTREAM_URL)
import Fastify from 'fastify';
import proxy from '@fastify/http-proxy';

const port = Number(process.env.PORT);
const upstream = process.env.UPSTREAM_URL;
if (!Number.isInteger(port) || port <= 0 || !upstream) {
  console.error('baseline-proxy: PORT and UPSTREAM_URL are required');
  process.exit(2);
}

const app = Fastify({ logger: false });
await app.register(proxy, { upstream, prefix: '/api', rewritePrefix: '' });
await app.listen({ host: '127.0.0.1', port });

const stop = () => {
  app.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
