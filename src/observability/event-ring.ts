import type { EmittedEvent, EventLevel, EventSink } from './events.js';

/**
 * The events module's live sink: the last `size` security events of this process, in memory, for
 * the console's live views and the admin API's stream (and for `/api/events` when the gateway has
 * no database). Ids are this process's sequence numbers, written `r<seq>` so they are never
 * mistaken for the audit table's.
 */

export interface EventFilter {
  /** An exact type, or a prefix ending in `_` (`authn_`). */
  type?: string | undefined;
  level?: EventLevel | undefined;
  route?: string | undefined;
  clientIp?: string | undefined;
  actor?: string | undefined;
  subject?: string | undefined;
  requestId?: string | undefined;
  /** ISO 8601: at or after. */
  since?: string | undefined;
  /** ISO 8601: before. */
  until?: string | undefined;
}

/** An event as the admin API shows it. */
export interface ListedEvent {
  id: string;
  time: string;
  event: string;
  type: string;
  level: EventLevel;
  description: string;
  requestId: string | null;
  clientIp: string | null;
  route: string | null;
  actor: string | null;
  subject: string | null;
  data: unknown;
}

export interface EventPage {
  items: ListedEvent[];
  nextCursor: string | null;
}

export function matches(e: Omit<ListedEvent, 'id'>, f: EventFilter): boolean {
  if (f.type !== undefined && (f.type.endsWith('_') ? !e.type.startsWith(f.type) : e.type !== f.type)) return false;
  if (f.level !== undefined && e.level !== f.level) return false;
  if (f.route !== undefined && e.route !== f.route) return false;
  if (f.clientIp !== undefined && e.clientIp !== f.clientIp) return false;
  if (f.actor !== undefined && e.actor !== f.actor) return false;
  if (f.subject !== undefined && e.subject !== f.subject) return false;
  if (f.requestId !== undefined && e.requestId !== f.requestId) return false;
  if (f.since !== undefined && e.time < f.since) return false;
  if (f.until !== undefined && e.time >= f.until) return false;
  return true;
}

export class EventRing {
  readonly #size: number;
  readonly #items: (ListedEvent | undefined)[];
  #seq = 0;
  readonly #listeners = new Set<(event: ListedEvent) => void>();

  constructor(size: number) {
    this.#size = size;
    this.#items = new Array<ListedEvent | undefined>(size);
  }

  readonly sink: EventSink = (e: EmittedEvent) => {
    const seq = ++this.#seq;
    const listed: ListedEvent = {
      id: `r${seq}`,
      time: e.time,
      event: e.event,
      type: e.type,
      level: e.level,
      description: e.description,
      requestId: e.requestId ?? null,
      clientIp: e.clientIp ?? null,
      route: e.route ?? null,
      actor: e.actor ?? null,
      subject: e.subject ?? null,
      data: e.data ?? null,
    };
    this.#items[seq % this.#size] = listed;
    for (const listener of this.#listeners) listener(listed);
  };

  /** Calls `listener` with every event from now on; returns a function that stops it. */
  subscribe(listener: (event: ListedEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  get(id: string): ListedEvent | undefined {
    const seq = parseSeq(id);
    if (seq === undefined || seq > this.#seq || seq <= this.#seq - this.#size) return undefined;
    return this.#items[seq % this.#size];
  }

  /** Newest first; `cursor` is the id of the last item of the previous page. */
  list(filter: EventFilter, limit: number, cursor?: string): EventPage {
    const from = cursor === undefined ? this.#seq : (parseSeq(cursor) ?? this.#seq + 1) - 1;
    const oldest = Math.max(1, this.#seq - this.#size + 1);
    const items: ListedEvent[] = [];
    let seq = Math.min(from, this.#seq);
    for (; seq >= oldest && items.length < limit; seq--) {
      const e = this.#items[seq % this.#size]!;
      if (matches(e, filter)) items.push(e);
    }
    // More may match below the last one returned: the cursor says where to go on.
    let more = false;
    for (let s = seq; s >= oldest; s--) {
      if (matches(this.#items[s % this.#size]!, filter)) {
        more = true;
        break;
      }
    }
    return { items, nextCursor: more && items.length > 0 ? items[items.length - 1]!.id : null };
  }

  /** Events per level since `since` (ISO 8601), of what the ring still holds. */
  countByLevel(since: string): Record<EventLevel, number> {
    const counts: Record<EventLevel, number> = { INFO: 0, WARN: 0, CRITICAL: 0 };
    for (let seq = this.#seq; seq >= Math.max(1, this.#seq - this.#size + 1); seq--) {
      const e = this.#items[seq % this.#size]!;
      if (e.time < since) break;
      counts[e.level]++;
    }
    return counts;
  }
}

function parseSeq(id: string): number | undefined {
  if (!/^r[1-9][0-9]{0,15}$/.test(id)) return undefined;
  return Number(id.slice(1));
}
