// One EventSource on /api/live for the whole console: pages subscribe to `tick` (one traffic
// point a second) and `security` (each new security event). Opened after login, closed before
// logout, so the browser never retries a stream the server has ended.
import type { SecurityEvent, SeriesPoint } from './api';

type Listener<T> = (value: T) => void;

const ticks = new Set<Listener<SeriesPoint>>();
const events = new Set<Listener<SecurityEvent>>();
const states = new Set<Listener<boolean>>();
let source: EventSource | undefined;
let connected = false;

function setConnected(value: boolean): void {
  if (connected === value) return;
  connected = value;
  for (const listener of states) listener(value);
}

function parse<T>(message: MessageEvent): T | undefined {
  try {
    return JSON.parse(String(message.data)) as T;
  } catch {
    return undefined;
  }
}

export function openLive(): void {
  if (source !== undefined) return;
  const es = new EventSource('/api/live');
  source = es;
  es.addEventListener('open', () => setConnected(true));
  es.addEventListener('tick', (message) => {
    const point = parse<SeriesPoint>(message);
    if (point !== undefined) for (const listener of ticks) listener(point);
  });
  es.addEventListener('security', (message) => {
    const event = parse<SecurityEvent>(message);
    if (event !== undefined) for (const listener of events) listener(event);
  });
  // A dropped connection is retried by the browser; a refused one (401, not an event stream) is
  // closed for good, and the pages fall back to polling.
  es.addEventListener('error', () => setConnected(es.readyState === EventSource.OPEN));
}

export function closeLive(): void {
  source?.close();
  source = undefined;
  setConnected(false);
}

export function isLive(): boolean {
  return connected;
}

function subscribe<T>(set: Set<Listener<T>>, listener: Listener<T>): () => void {
  set.add(listener);
  return () => set.delete(listener);
}

export const onTick = (listener: Listener<SeriesPoint>) => subscribe(ticks, listener);
export const onSecurityEvent = (listener: Listener<SecurityEvent>) => subscribe(events, listener);
export const onLiveState = (listener: Listener<boolean>) => subscribe(states, listener);
