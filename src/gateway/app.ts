import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { constants as h2constants, type Http2ServerRequest, type Http2ServerResponse, type ServerHttp2Session } from 'node:http2';
import type { Socket } from 'node:net';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { errorCodes, type ErrorCode } from '../errors/codes.js';
import { PROBLEM_CONTENT_TYPE, RampartError, toProblem } from '../errors/problem.js';
import { attachContext, enginePlugin, runResponseHooks, sendProblem, type PipelineRef } from './plugin.js';
import { forward } from './proxy/forward.js';
import { parseDuration, parseSize } from '../config/units.js';
import underPressure from '@fastify/under-pressure';
import type { RampartConfig } from '../config/schema.js';
import { plainAddress } from './client-ip.js';
import type { TlsMaterial } from './tls.js';

export interface GatewayAppOptions {
  ref: PipelineRef;
  logger: Logger;
  /** Serve HTTPS (and HTTP/2 when enabled) with this certificate; plain HTTP without. */
  tls?: TlsMaterial | undefined;
}

/**
 * The gateway as a Fastify app that is built but never listens (the runtime owns listening, tests
 * use `inject()` or listen on port 0): the engine's hooks and one catch-all route that forwards.
 */
export async function createGatewayApp(options: GatewayAppOptions): Promise<FastifyInstance> {
  const { ref, logger, tls } = options;
  const server = ref.current.loaded.config.server;
  const headersTimeout = parseDuration(server.timeouts.headers);
  // Node checks header and request timeouts only every connectionsCheckingInterval (30 s by
  // default), which would let a slow client hold a connection up to 30 s past the timeout.
  const connectionsCheckingInterval = Math.max(100, Math.min(1000, Math.floor(headersTimeout / 2)));
  const transport =
    tls === undefined
      ? { http: { connectionsCheckingInterval } }
      : tls.http2
        ? {
            http2: true as const,
            // At most 100 requests at once per connection (nghttp2 allows 2^32-1), so one
            // connection cannot take the whole upstream pool; idle sessions close like idle
            // HTTP/1.1 connections.
            https: { ...tls.options, allowHTTP1: true, settings: { maxConcurrentStreams: HTTP2_MAX_STREAMS } },
            http2SessionTimeout: parseDuration(server.timeouts.keepAlive),
          }
        : { https: { ...tls.options, connectionsCheckingInterval } };
  const app = Fastify({
    ...(transport as { http: { connectionsCheckingInterval: number } }),
    logger: false,
    genReqId: () => randomUUID(),
    requestIdHeader: false,
    trustProxy: false,
    // Draining is answered by the engine as problem+json (RMP_SHUTTING_DOWN).
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    keepAliveTimeout: parseDuration(server.timeouts.keepAlive),
    requestTimeout: parseDuration(server.timeouts.request),
    connectionTimeout: 0,
    exposeHeadRoutes: false,
    routerOptions: { maxParamLength: 65_535 },
    clientErrorHandler: (error, socket) => answerClientError(error, socket, logger),
    frameworkErrors: (error, request, reply) => {
      // Fastify answers these outside any route context, where no onRequest/onSend hook runs:
      // give the request a context and run the response phase (security headers, request id) here.
      const ctx = request.rampart ?? attachContext(request, reply, ref.current, logger);
      runResponseHooks(ctx, reply);
      sendProblem(reply, new RampartError('RMP_REQUEST_MALFORMED', { detail: 'The request URL is not valid.', cause: error }), ctx, logger);
    },
  });
  // Set on the server itself: Fastify passes these options to http(s) servers but not to the
  // HTTP/2 one, whose HTTP/1.1 side would otherwise keep Node's 60 s / 5 min.
  const requestTimeout = parseDuration(server.timeouts.request);
  app.server.headersTimeout = headersTimeout;
  app.server.requestTimeout = requestTimeout;
  // Node answers an HTTP/1.1 request without Host with a bare 400 before Fastify sees it: the
  // engine refuses it instead, as problem+json (regression test missing-host-bare-400).
  (app.server as { requireHostHeader?: boolean }).requireHostHeader = false;
  (app.server as { connectionsCheckingInterval?: number }).connectionsCheckingInterval = connectionsCheckingInterval;
  limitConnectionsPerIp(app, ref, tls !== undefined);
  app.server.on('connect', (req: IncomingMessage | Http2ServerRequest, socket: Socket | Http2ServerResponse) => {
    if (req.httpVersionMajor === 2) refuseHttp2Connect(socket as Http2ServerResponse);
    else writeRawProblem(socket as Socket, 'RMP_METHOD_REFUSED', 'CONNECT is refused on every route.', { allow: '' });
  });
  // Without these listeners Node answers an unknown `Expect` with a bare 417 and closes an upgrade
  // request's connection without a word (regression test expect-and-upgrade-unanswered).
  app.server.on('checkExpectation', (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse) => {
    const requestId = writeProblemResponse(res, req.httpVersionMajor === 2, 'RMP_EXPECTATION_FAILED', 'Only "Expect: 100-continue" is understood.', {});
    logger.info({ type: 'access', requestId, method: req.method, status: 417, code: 'RMP_EXPECTATION_FAILED', clientIp: plainAddress(req.socket?.remoteAddress) }, 'request refused: unknown expectation');
  });
  app.server.on('upgrade', (req: IncomingMessage, socket: Socket) => {
    const requestId = writeRawProblem(socket, 'RMP_UPGRADE_NOT_SUPPORTED', 'Protocol upgrades (WebSocket, h2c) are not supported.', {});
    logger.info({ type: 'access', requestId, method: req.method, status: 501, code: 'RMP_UPGRADE_NOT_SUPPORTED', clientIp: plainAddress(socket.remoteAddress) }, 'request refused: protocol upgrade');
  });
  if (tls?.http2 === true) limitHttp2Streams(app, requestTimeout);

  // Bodies stay unread streams: the proxy pipes them upstream (policies that need a body read it).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, _payload, done) => done(null));

  app.setErrorHandler((error, request, reply) => {
    const status = (error as { statusCode?: number }).statusCode;
    const mapped = error instanceof RampartError ? error : status !== undefined && status >= 400 && status < 500 ? new RampartError('RMP_REQUEST_MALFORMED', { cause: error }) : error;
    sendProblem(reply, mapped, request.rampart, logger);
  });

  await app.register(enginePlugin, { ref, logger, mode: 'gateway', overloaded: await watchPressure(app, server.overload) });

  app.route({
    method: app.supportedMethods.filter((m) => m !== 'TRACE'),
    url: '*',
    handler: (request, reply) => {
      const ctx = request.rampart!;
      const handler = ctx.route.handler;
      if (handler !== undefined) return handler(ctx, reply).catch((error: unknown) => sendProblem(reply, error, ctx, logger));
      return forward(ctx, request, reply).catch((error: unknown) => sendProblem(reply, error, ctx, logger));
    },
  });
  return app;
}

/**
 * Process-wide shedding: `@fastify/under-pressure` samples event-loop delay and memory (every
 * `maxEventLoopDelay`, between 100 ms and 1 s); the engine asks it at the start of every request and answers 503 at once while it says
 * so. Its own hook never answers (the engine does, as problem+json with the security headers).
 */
async function watchPressure(app: FastifyInstance, overload: RampartConfig['server']['overload']): Promise<(() => number | undefined) | undefined> {
  const maxEventLoopDelay = parseDuration(overload.maxEventLoopDelay);
  const maxHeapUsedBytes = overload.maxHeapUsed === undefined ? 0 : parseSize(overload.maxHeapUsed);
  const maxRssBytes = overload.maxRss === undefined ? 0 : parseSize(overload.maxRss);
  if (maxEventLoopDelay === 0 && maxHeapUsedBytes === 0 && maxRssBytes === 0) return undefined;
  // under-pressure reads a sampling period with no event-loop sample as an infinite delay. With
  // the period no longer than the threshold, such a period means a stall at least that long: a
  // shorter one (GC, a descheduled process) can no longer shed (regression test
  // eld-shedding-below-threshold).
  const sampleInterval = maxEventLoopDelay === 0 ? 1000 : Math.max(100, Math.min(1000, maxEventLoopDelay));
  await app.register(underPressure, { maxEventLoopDelay, maxHeapUsedBytes, maxRssBytes, sampleInterval, exposeStatusRoute: false, pressureHandler: () => undefined });
  const retryAfter = Math.max(1, Math.ceil(parseDuration(overload.retryAfter) / 1000));
  return () => (app.isUnderPressure() ? retryAfter : undefined);
}

const HTTP2_MAX_STREAMS = 100;
const http2Sessions = new WeakMap<FastifyInstance, Set<ServerHttp2Session>>();

/** The open HTTP/2 sessions of an app (for the runtime's drain: GOAWAY, then destroy at the deadline). */
export function openHttp2Sessions(app: FastifyInstance): ReadonlySet<ServerHttp2Session> | undefined {
  return http2Sessions.get(app);
}

/**
 * HTTP/2 requests are streams of one session, which Node's per-connection header and request
 * timeouts do not see: each stream gets `server.timeouts.request` to finish sending its body, or it
 * is reset (a slow-body client holds nothing longer than over HTTP/1.1). Sessions are tracked for
 * the drain.
 */
function limitHttp2Streams(app: FastifyInstance, requestTimeout: number): void {
  const sessions = new Set<ServerHttp2Session>();
  http2Sessions.set(app, sessions);
  app.server.on('session', (session: ServerHttp2Session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  });
  app.addHook('onRequest', (request, reply, done) => {
    const raw = request.raw as unknown as IncomingMessage | Http2ServerRequest;
    if (raw.httpVersionMajor === 2 && !raw.complete) {
      const timer = setTimeout(() => {
        if (!raw.complete) (raw as Http2ServerRequest).stream.close(h2constants.NGHTTP2_CANCEL);
      }, requestTimeout);
      raw.once('end', () => clearTimeout(timer));
      reply.raw.once('close', () => clearTimeout(timer));
    }
    done();
  });
}

/** An HTTP/2 CONNECT is a stream like any other: answered 405 on it, not with HTTP/1.1 text. */
function refuseHttp2Connect(res: Http2ServerResponse): void {
  writeProblemResponse(res, true, 'RMP_METHOD_REFUSED', 'CONNECT is refused on every route.', { allow: '' });
}

/**
 * A problem answered on a response object outside Fastify (no policy runs): the fixed security
 * headers of raw answers; over HTTP/1.1 the connection is closed (a body may follow unread).
 */
function writeProblemResponse(res: ServerResponse | Http2ServerResponse, http2: boolean, code: ErrorCode, detail: string, headers: Record<string, string>): string {
  const requestId = randomUUID();
  const body = JSON.stringify(toProblem(new RampartError(code, { detail }), requestId, undefined));
  const head: Record<string, string> = { 'content-type': PROBLEM_CONTENT_TYPE, 'content-length': String(Buffer.byteLength(body)), ...headers };
  for (const line of RAW_SECURITY_HEADERS.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) head[line.slice(0, colon).toLowerCase()] = line.slice(colon + 2);
  }
  if (!http2) head.connection = 'close';
  res.writeHead(errorCodes[code].status, head);
  res.end(body);
  return requestId;
}

/** Open connections per client address, shared by the listeners of one gateway (HTTPS and plain HTTP). */
const connectionCounts = new WeakMap<PipelineRef, Map<string, number>>();

/**
 * Caps the open connections of one client address (`server.maxConnectionsPerIp`, read per
 * connection so a reload applies). Trusted proxies are exempt: every client behind them shares
 * their address. Over plain HTTP the refused connection gets a 429; over TLS it is closed.
 */
function limitConnectionsPerIp(app: FastifyInstance, ref: PipelineRef, encrypted: boolean): void {
  let open = connectionCounts.get(ref);
  if (open === undefined) {
    open = new Map<string, number>();
    connectionCounts.set(ref, open);
  }
  const counts = open;
  app.server.on('connection', (socket: Socket) => {
    const address = socket.remoteAddress ?? '';
    const pipeline = ref.current;
    const max = pipeline.loaded.config.server.maxConnectionsPerIp;
    if (max === 0 || (pipeline.trust !== undefined && pipeline.trust(address, 0))) return;
    const count = (counts.get(address) ?? 0) + 1;
    if (count > max) {
      // Before the TLS handshake there is no way to answer in HTTP (and doing the handshake is the
      // cost being refused): the connection is closed.
      if (encrypted) socket.destroy();
      else writeRawProblem(socket, 'RMP_TOO_MANY_CONNECTIONS', 'Too many open connections from this address.', {});
      return;
    }
    counts.set(address, count);
    socket.once('close', () => {
      const left = (counts.get(address) ?? 1) - 1;
      if (left <= 0) counts.delete(address);
      else counts.set(address, left);
    });
  });
}

/** Malformed HTTP never reaches Fastify: answer it on the socket, as problem+json. */
export function answerClientError(error: Error & { code?: string }, socket: Socket, logger: Logger): void {
  const code = error.code;
  if (code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  let rmp: ErrorCode = 'RMP_REQUEST_MALFORMED';
  if (code === 'HPE_HEADER_OVERFLOW') rmp = 'RMP_REQUEST_HEADERS_TOO_LARGE';
  else if (code === 'ERR_HTTP_REQUEST_TIMEOUT' || code === 'HPE_HEADERS_TIMEOUT') rmp = 'RMP_REQUEST_TIMEOUT';
  else if (code === 'HPE_INVALID_METHOD') rmp = 'RMP_METHOD_NOT_IMPLEMENTED';
  const requestId = writeRawProblem(socket, rmp, undefined, {});
  logger.info({ type: 'access', requestId, status: errorCodes[rmp].status, code: rmp, clientIp: plainAddress(socket.remoteAddress), parseError: code }, 'request refused by the HTTP parser');
}

/**
 * Answers written on the socket (unparseable HTTP, CONNECT) run no policy: they carry the API
 * profile's fixed security headers themselves.
 */
const RAW_SECURITY_HEADERS =
  "X-Content-Type-Options: nosniff\r\nX-Frame-Options: DENY\r\nContent-Security-Policy: default-src 'none'; frame-ancestors 'none'\r\nReferrer-Policy: no-referrer\r\nCache-Control: no-store\r\n";

function writeRawProblem(socket: Socket, code: ErrorCode, detail: string | undefined, headers: Record<string, string>): string {
  const requestId = randomUUID();
  const body = JSON.stringify(toProblem(new RampartError(code, { detail }), requestId, undefined));
  const { status, title } = errorCodes[code];
  let head = `HTTP/1.1 ${status} ${title}\r\nContent-Type: ${PROBLEM_CONTENT_TYPE}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n${RAW_SECURITY_HEADERS}`;
  for (const [name, value] of Object.entries(headers)) head += `${name}: ${value}\r\n`;
  socket.end(`${head}\r\n${body}`);
  return requestId;
}
