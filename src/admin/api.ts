import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import { serialize as serializeCookie } from 'cookie';
import { DURATION_PATTERN, parseDuration } from '../config/units.js';
import { RampartError } from '../errors/problem.js';
import type { PipelineRef } from '../gateway/plugin.js';
import type { IdentityRuntime } from '../identity/index.js';
import type { EventFilter, EventRing, ListedEvent } from '../observability/event-ring.js';
import type { Events } from '../observability/events.js';
import type { Metrics } from '../observability/metrics.js';
import type { Alerts } from '../observability/alerts.js';
import { errorCodes } from '../errors/codes.js';
import { SECONDS } from '../observability/traffic.js';
import { SESSION_COOKIE, clientOf, type AdminAuth, type AdminPrincipal } from './auth.js';
import { maskConfig } from './mask.js';
import { protectionOf } from './protection.js';

/** What the admin API reads of the alerts engine. */
export type AlertSource = Pick<Alerts, 'rules' | 'history'>;

export interface AdminApiDeps {
  ref: PipelineRef;
  metrics: Metrics;
  events: Events;
  ring: EventRing;
  identity: IdentityRuntime | undefined;
  alerts: AlertSource;
  auth: AdminAuth;
  sessionTtlMs: number;
}

declare module 'fastify' {
  interface FastifyRequest {
    admin: AdminPrincipal | null;
  }
  interface FastifyContextConfig {
    /** An admin API route that needs no admin (the logins). */
    adminPublic?: boolean;
  }
}

const LEVEL = Type.Union([Type.Literal('INFO'), Type.Literal('WARN'), Type.Literal('CRITICAL')]);
const Cursor = Type.String({ pattern: '^(r?[1-9][0-9]{0,15}|[A-Za-z0-9_-]{1,200})$' });
export const Text = (max: number) => Type.String({ minLength: 1, maxLength: max });
const EventsQuery = Type.Object(
  {
    type: Type.Optional(Type.String({ pattern: '^[a-z][a-z0-9_]{0,63}$' })),
    level: Type.Optional(LEVEL),
    route: Type.Optional(Text(64)),
    clientIp: Type.Optional(Text(64)),
    actor: Type.Optional(Text(300)),
    subject: Type.Optional(Text(300)),
    requestId: Type.Optional(Text(128)),
    since: Type.Optional(Type.String({ format: 'date-time' })),
    until: Type.Optional(Type.String({ format: 'date-time' })),
    limit: Type.Integer({ minimum: 1, maximum: 200, default: 50 }),
    cursor: Type.Optional(Cursor),
  },
  { additionalProperties: false },
);
const OverviewQuery = Type.Object({ window: Type.Integer({ minimum: 1, maximum: SECONDS - 1, default: 300 }) }, { additionalProperties: false });
/** `GET /api/clients`: the cursor is the last client id of the page (ids may hold dots). */
const ClientsQuery = Type.Object({ limit: Type.Integer({ minimum: 1, maximum: 200, default: 50 }), cursor: Type.Optional(Type.String({ pattern: '^[a-z0-9][a-z0-9._-]{0,63}$' })) }, { additionalProperties: false });
const UsersQuery = Type.Object(
  {
    email: Type.Optional(Text(320)),
    role: Type.Optional(Text(64)),
    status: Type.Optional(Type.Union([Type.Literal('active'), Type.Literal('disabled'), Type.Literal('locked')])),
    limit: Type.Integer({ minimum: 1, maximum: 200, default: 50 }),
    cursor: Type.Optional(Cursor),
  },
  { additionalProperties: false },
);
const KeysQuery = Type.Object({ userId: Type.Optional(Text(64)), limit: Type.Integer({ minimum: 1, maximum: 200, default: 50 }), cursor: Type.Optional(Cursor) }, { additionalProperties: false });
const LoginBody = Type.Union([
  Type.Object({ email: Text(320), password: Text(1024) }, { additionalProperties: false }),
  Type.Object({ token: Text(1024) }, { additionalProperties: false }),
]);
/** `email` is accepted for clients that send it back, and ignored: the session gets the account's own. */
const MfaBody = Type.Object({ mfaToken: Text(4096), code: Type.Optional(Type.String({ pattern: '^[0-9]{6,8}$' })), recoveryCode: Type.Optional(Text(64)), email: Type.Optional(Text(320)) }, { additionalProperties: false });
const PasswordBody = Type.Object({ passwordChangeToken: Text(4096), newPassword: Text(1024) }, { additionalProperties: false });
const CreateKeyBody = Type.Object(
  {
    ownerId: Text(64),
    name: Type.String({ minLength: 1, maxLength: 100, pattern: '^[^\\u0000-\\u001f\\u007f]*$' }),
    scopes: Type.Optional(Type.Array(Type.String({ pattern: '^[A-Za-z0-9:._-]{1,64}$' }), { maxItems: 50, uniqueItems: true })),
    expiresIn: Type.Optional(Type.String({ pattern: DURATION_PATTERN })),
  },
  { additionalProperties: false },
);
export const IdParam = Type.Object({ id: Text(200) }, { additionalProperties: false });

/** Security events a live stream sends per second at most. */
const LIVE_EVENTS = 50;
/** Live streams open at once, in all. */
const MAX_STREAMS = 20;
/** Bytes a live stream may have waiting for a slow reader before it is dropped. */
const MAX_STREAM_BUFFER = 256 * 1024;

/** Each code's area (`RMP_<AREA>_…`), for "denials by policy area". */
const AREA = new Map(Object.keys(errorCodes).map((code) => [code, code.split('_')[1] ?? 'OTHER']));

/**
 * The admin API (docs/admin-api.md): JSON under `/api/`, for the console, the CLI and scripts.
 * Every endpoint but the login needs an admin (see AdminAuth); the admin listener is the only
 * place it is mounted.
 */
export function registerAdminApi(app: FastifyInstance, deps: AdminApiDeps): void {
  const { ref, metrics, ring, identity, auth } = deps;

  const setCookie = (reply: FastifyReply, value: string, maxAge: number) =>
    reply.header('set-cookie', serializeCookie(SESSION_COOKIE, value, { path: '/', httpOnly: true, secure: true, sameSite: 'strict', maxAge }));
  const service = () => identityService(identity);
  const adminEvent = (request: FastifyRequest, description: string, data: Record<string, string | number | boolean>, subject?: string) => emitAdminEvent(deps.events, request, description, data, subject);

  // ── session ───────────────────────────────────────────────────────────────────────────────
  app.post('/api/session', { schema: { body: LoginBody }, config: { adminPublic: true } }, async (request, reply) => {
    const body = request.body as Static<typeof LoginBody>;
    const started = 'token' in body ? await auth.loginWithToken(body.token, request) : await auth.loginWithPassword(body.email, body.password, request);
    setCookie(reply, started.cookie, Math.floor(deps.sessionTtlMs / 1000));
    return reply.code(201).send(started.view);
  });
  app.post('/api/session/mfa', { schema: { body: MfaBody }, config: { adminPublic: true } }, async (request, reply) => {
    const body = request.body as Static<typeof MfaBody>;
    const started = await auth.loginWithMfa(body, request);
    setCookie(reply, started.cookie, Math.floor(deps.sessionTtlMs / 1000));
    return reply.code(201).send(started.view);
  });
  app.post('/api/session/password', { schema: { body: PasswordBody }, config: { adminPublic: true } }, async (request, reply) => {
    const started = await auth.loginWithPasswordChange(request.body as Static<typeof PasswordBody>, request);
    setCookie(reply, started.cookie, Math.floor(deps.sessionTtlMs / 1000));
    return reply.code(201).send(started.view);
  });
  app.get('/api/session', async (request) => {
    const p = principal(request);
    if (p.session !== undefined) return auth.view(p.session);
    return { user: p.user, csrfToken: null, expiresAt: null };
  });
  app.delete('/api/session', async (request, reply) => {
    await auth.logout(principal(request), request);
    setCookie(reply, '', 0);
    return reply.code(204).send();
  });

  // ── figures ───────────────────────────────────────────────────────────────────────────────
  app.get('/api/overview', { schema: { querystring: OverviewQuery } }, async (request) => {
    const { window } = request.query as Static<typeof OverviewQuery>;
    const summary = metrics.traffic.summary(window);
    const areas = new Map<string, number>();
    for (const d of summary.deniedBy) {
      const area = AREA.get(d.code) ?? 'OTHER';
      areas.set(area, (areas.get(area) ?? 0) + d.count);
    }
    const p = ref.current;
    return {
      now: new Date().toISOString(),
      window,
      summary,
      deniedByPolicy: summary.deniedByPolicy,
      deniedByArea: [...areas].sort((a, b) => b[1] - a[1]).map(([area, count]) => ({ area, count })),
      series: metrics.traffic.series(window),
      config: { version: p.version, routes: p.routes.length, loadedAt: p.loadedAt },
      events: { last24h: ring.countByLevel(new Date(Date.now() - 86_400_000).toISOString()) },
      alerts: { firing: deps.alerts.rules().filter((r) => r.firing).length },
    };
  });

  let streams = 0;
  app.get('/api/live', (request, reply) => {
    const p = principal(request);
    if (streams >= MAX_STREAMS) throw new RampartError('RMP_RATE_LIMITED', { detail: `At most ${MAX_STREAMS} live streams at once.`, headers: { 'retry-after': '5' } });
    streams++;
    reply.hijack();
    const res = reply.raw;
    let sent = 0;
    let dropped = 0;
    let seconds = 0;
    let stopped = false;
    // Set once the stream is set up; stop() may run before (the client gone at once).
    const held: { tick?: NodeJS.Timeout; unsubscribe?: () => void } = {};
    const stop = () => {
      if (stopped) return;
      stopped = true;
      streams--;
      clearInterval(held.tick);
      held.unsubscribe?.();
      p.session?.onEnd.delete(stop);
      if (!res.writableEnded) res.end();
    };
    res.on('close', stop);
    // A reader that stops reading is dropped instead of being buffered for.
    const write = (chunk: string) => {
      if (stopped) return;
      if (res.writableLength > MAX_STREAM_BUFFER) stop();
      else res.write(chunk);
    };
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    write('retry: 2000\n\n');
    // At most LIVE_EVENTS security events a second go out (a flood of denials would swamp the
    // console); the rest are counted in the next tick's `droppedEvents`.
    const tick = setInterval(() => {
      try {
        const point = metrics.traffic.series(1)[0]!;
        write(`event: tick\ndata: ${JSON.stringify({ ...point, droppedEvents: dropped })}\n\n`);
        sent = 0;
        dropped = 0;
        // Every 15 s: the credentials the stream was opened with must still hold (a session not
        // logged out or expired, an access token not revoked or expired).
        if (++seconds % 15 === 0) {
          write(': keep-alive\n\n');
          void auth.stillValid(p).then((valid) => valid || stop(), stop);
        }
      } catch {
        stop();
      }
    }, 1000);
    tick.unref();
    held.tick = tick;
    if (stopped) return clearInterval(tick);
    held.unsubscribe = ring.subscribe((event) => {
      if (sent >= LIVE_EVENTS) {
        dropped++;
        return;
      }
      sent++;
      write(`event: security\ndata: ${JSON.stringify(event)}\n\n`);
    });
    // A session's stream ends with it at once (logout, expiry, the login behind it revoked).
    p.session?.onEnd.add(stop);
  });

  // ── security events ───────────────────────────────────────────────────────────────────────
  app.get('/api/events', { schema: { querystring: EventsQuery } }, async (request) => {
    const q = request.query as Static<typeof EventsQuery>;
    const filter: EventFilter = { type: q.type, level: q.level, route: q.route, clientIp: q.clientIp, actor: q.actor, subject: q.subject, requestId: q.requestId, since: q.since, until: q.until };
    if (identity !== undefined) {
      const cursor = q.cursor === undefined ? undefined : /^[1-9][0-9]{0,15}$/.test(q.cursor) ? Number(q.cursor) : badRequest('/query/cursor', 'expected a cursor from nextCursor');
      const page = await identity.audit.list(filter, q.limit, cursor);
      return { items: page.items.map((e) => ({ ...e, id: String(e.id) })), nextCursor: page.nextCursor };
    }
    if (q.cursor !== undefined && !q.cursor.startsWith('r')) badRequest('/query/cursor', 'expected a cursor from nextCursor');
    return ring.list(filter, q.limit, q.cursor);
  });

  app.get('/api/events/:id', { schema: { params: IdParam } }, async (request) => {
    const { id } = request.params as Static<typeof IdParam>;
    let found: ListedEvent | undefined;
    if (id.startsWith('r')) found = ring.get(id);
    else if (identity !== undefined && /^[1-9][0-9]{0,15}$/.test(id)) {
      const e = await identity.audit.get(Number(id));
      found = e === undefined ? undefined : { ...e, id: String(e.id) };
    }
    if (found === undefined) throw new RampartError('RMP_ADMIN_NOT_FOUND', { detail: 'No such event (or it is older than the retention).' });
    return found;
  });

  // ── routes and config ─────────────────────────────────────────────────────────────────────
  app.get('/api/routes', async () => {
    const p = ref.current;
    return { items: p.routes.map((route) => protectionOf(p, route)) };
  });

  app.get('/api/config', async () => {
    const p = ref.current;
    return { version: p.version, file: p.loaded.file, loadedAt: p.loadedAt, config: maskConfig(p.loaded.config) };
  });

  // ── consumers and API keys ────────────────────────────────────────────────────────────────
  app.get('/api/users', { schema: { querystring: UsersQuery } }, async (request) => {
    const q = request.query as Static<typeof UsersQuery>;
    return service().listUsers({ limit: q.limit, cursor: q.cursor, email: q.email, role: q.role, status: q.status });
  });

  app.get('/api/apikeys', { schema: { querystring: KeysQuery } }, async (request) => {
    const q = request.query as Static<typeof KeysQuery>;
    return service().apiKeys.list({ userId: q.userId, limit: q.limit, cursor: q.cursor });
  });

  app.post('/api/apikeys', { schema: { body: CreateKeyBody } }, async (request, reply) => {
    const body = request.body as Static<typeof CreateKeyBody>;
    const p = principal(request);
    // The admin token acts like the CLI (the owner's scopes are the ceiling); an identity admin
    // can give at most what their own roles hold.
    const creator = { id: p.user.id, roles: p.via === 'token' ? undefined : p.user.roles };
    const created = await service().apiKeys.create(creator, { ownerId: body.ownerId, name: body.name, scopes: body.scopes, expiresInMs: body.expiresIn === undefined ? undefined : parseDuration(body.expiresIn) }, clientOf(request));
    adminEvent(request, 'admin API: API key created', { keyId: created.key.id }, created.key.userId);
    reply.header('cache-control', 'no-store');
    return reply.code(201).send(created);
  });

  app.delete('/api/apikeys/:id', { schema: { params: IdParam } }, async (request, reply) => {
    const { id } = request.params as Static<typeof IdParam>;
    const s = service();
    const key = await s.apiKeys.get(id);
    if (key === undefined || !(await s.apiKeys.revoke(principal(request).user.id, id, clientOf(request)))) {
      throw new RampartError('RMP_ADMIN_NOT_FOUND', { detail: 'No such API key (or it is already revoked).' });
    }
    adminEvent(request, 'admin API: API key revoked', { keyId: id }, key.userId);
    return reply.code(204).send();
  });

  app.get('/api/clients', { schema: { querystring: ClientsQuery } }, async (request) => {
    const q = request.query as Static<typeof ClientsQuery>;
    return service().clients.list({ limit: q.limit, after: q.cursor });
  });

  // ── alerts ────────────────────────────────────────────────────────────────────────────────
  app.get('/api/alerts', async () => {
    return { rules: deps.alerts.rules(), history: deps.alerts.history(200) };
  });
}

/** The admin behind a request (the onRequest hook has authenticated every `/api/*` request but the logins). */
export function principal(request: FastifyRequest): AdminPrincipal {
  // Never undefined behind the admin API's hook; if a route were ever mounted outside it, it
  // refuses rather than acting for nobody.
  if (request.admin === null) throw new RampartError('RMP_ADMIN_AUTH_REQUIRED', { headers: { 'www-authenticate': 'Bearer realm="rampart-admin"' } });
  return request.admin;
}

/** The identity service, or 404 RMP_ADMIN_IDENTITY_DISABLED on a gateway that runs none. */
export function identityService(identity: IdentityRuntime | undefined): IdentityRuntime['service'] {
  if (identity === undefined) throw new RampartError('RMP_ADMIN_IDENTITY_DISABLED');
  return identity.service;
}

/** A change made through the admin API: one `authz_admin` security event, the admin as actor. */
export function emitAdminEvent(events: Events, request: FastifyRequest, description: string, data: Record<string, string | number | boolean>, subject?: string): void {
  const who = principal(request).user.id;
  events.emit({ type: 'authz_admin', level: 'INFO', description, args: [who], actor: who, ...(subject !== undefined ? { subject } : {}), requestId: request.id, clientIp: request.ip, route: 'admin', data });
}

function badRequest(pointer: string, detail: string): never {
  throw new RampartError('RMP_ADMIN_BAD_REQUEST', { extensions: { errors: [{ pointer, detail }] } });
}
