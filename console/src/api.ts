// The admin API client (docs/admin-api.md). Same origin only; the session cookie is HttpOnly, so
// the console never sees it: it holds the CSRF token returned at login and sends it on changes.

export interface SessionUser {
  id: string;
  email: string | null;
  roles: string[];
}

export interface Session {
  user: SessionUser;
  /** null when the admin token itself is the credential (no cookie, no CSRF). */
  csrfToken: string | null;
  expiresAt?: string | null;
}

/** A problem+json answer (or a network failure, status 0). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string | undefined,
    readonly detail: string,
    readonly body: Record<string, unknown> = {},
  ) {
    super(detail);
    this.name = 'ApiError';
  }
}

let csrfToken: string | undefined;
let onUnauthorized: (() => void) | undefined;

export function setCsrfToken(token: string | undefined): void {
  csrfToken = token;
}

/** Called when a call other than login answers 401: the session ended (expired, idle, revoked). */
export function setUnauthorizedHandler(handler: (() => void) | undefined): void {
  onUnauthorized = handler;
}

const CHANGES = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json, application/problem+json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (CHANGES.has(method) && csrfToken !== undefined) headers['x-csrf-token'] = csrfToken;
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      headers,
      credentials: 'same-origin',
      cache: 'no-store',
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
  } catch {
    throw new ApiError(0, undefined, 'The admin API cannot be reached.');
  }
  if (response.status === 204) return undefined as T;
  const type = response.headers.get('content-type') ?? '';
  const json = type.includes('json') ? ((await response.json().catch(() => ({}))) as Record<string, unknown>) : {};
  if (!response.ok) {
    const code = typeof json.code === 'string' ? json.code : undefined;
    const detail = typeof json.detail === 'string' ? json.detail : typeof json.title === 'string' ? json.title : `${response.status} ${response.statusText}`;
    if (response.status === 401 && !path.startsWith('/api/session')) onUnauthorized?.();
    throw new ApiError(response.status, code, detail, json);
  }
  return json as T;
}

/** `?a=1&b=2` from the defined, non-empty values. */
export function query(params: Record<string, string | number | undefined>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== '') search.set(key, String(value));
  }
  const text = search.toString();
  return text === '' ? '' : `?${text}`;
}

export function errorText(error: unknown): string {
  if (error instanceof ApiError) return error.detail;
  return error instanceof Error ? error.message : String(error);
}

// Answers of the admin API, as far as the console reads them. Every field the console shows is
// optional-tolerant: a missing figure shows as "–", not as a crash.

export interface StatusClasses {
  '1xx'?: number;
  '2xx'?: number;
  '3xx'?: number;
  '4xx'?: number;
  '5xx'?: number;
}

export interface SeriesPoint {
  t: number;
  requests: number;
  status?: StatusClasses;
  p50: number | null;
  p99: number | null;
  denials?: number;
  upstream5xx?: number;
  rate?: number;
}

export interface Overview {
  now?: string;
  window?: number;
  summary?: {
    requests?: number;
    rate?: number;
    status?: StatusClasses;
    p50?: number | null;
    p99?: number | null;
    upstream?: number;
    upstream5xx?: number;
    upstreamErrors?: number;
    denials?: number;
    deniedBy?: { code: string; count: number }[];
    topDeniedClients?: { clientIp: string; count: number }[];
  };
  deniedByArea?: { area: string; count: number }[];
  deniedByPolicy?: { policy: string; count: number }[];
  series?: SeriesPoint[];
  config?: { version?: number; routes?: number; loadedAt?: string };
  events?: { last24h?: Record<string, number> };
  alerts?: { firing?: number };
}

export interface SecurityEvent {
  id: string;
  time: string;
  event?: string;
  type: string;
  level: string;
  description?: string;
  requestId?: string | null;
  clientIp?: string | null;
  route?: string | null;
  actor?: string | null;
  subject?: string | null;
  data?: unknown;
}

export interface Page<T> {
  items: T[];
  nextCursor?: string | null;
}

export interface RouteInfo {
  name: string;
  methods?: string[];
  paths?: string[];
  hosts?: string[];
  upstream?: string | null;
  public?: boolean;
  policies?: { name: string; phase: string }[];
  protection?: { id: string; label: string; on: boolean; detail?: string }[];
}

export interface User {
  id: string;
  email: string;
  roles?: string[];
  status?: string;
  createdAt?: string;
}

export interface ApiKey {
  id: string;
  name: string;
  /** docs/admin-api.md says ownerId; the identity service's DTO says userId: either is read. */
  ownerId?: string;
  userId?: string;
  status?: string;
  prefix?: string;
  scopes?: string[];
  createdAt?: string;
  expiresAt?: string | null;
  lastUsedAt?: string | null;
  revokedAt?: string | null;
}

export interface Alerts {
  rules?: { name: string; kind?: string; description?: string; firing?: boolean }[];
  history?: {
    id: string;
    rule: string;
    firedAt: string;
    severity?: string;
    summary?: string;
    group?: string | null;
    value?: number;
    threshold?: number;
    notifications?: { target: string; status: string; attempts?: number; error?: string }[];
  }[];
}
