import { Fragment } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, errorText, query, type Page, type SecurityEvent } from '../api';
import { isLive, onSecurityEvent } from '../live';
import { dash, time, useInterval } from '../util';

interface Filters {
  type: string;
  level: string;
  route: string;
  clientIp: string;
}

const EMPTY: Filters = { type: '', level: '', route: '', clientIp: '' };
const LEVELS = ['INFO', 'WARN', 'CRITICAL'];
const PAGE_SIZE = 50;

function fromSearch(search: string): Filters {
  const params = new URLSearchParams(search);
  return { type: params.get('type') ?? '', level: params.get('level') ?? '', route: params.get('route') ?? '', clientIp: params.get('clientIp') ?? '' };
}

/** The API's filter rules, for events that arrive on the live stream. */
function matches(event: SecurityEvent, f: Filters): boolean {
  if (f.type !== '' && !(f.type.endsWith('_') ? event.type.startsWith(f.type) : event.type === f.type)) return false;
  if (f.level !== '' && event.level !== f.level) return false;
  if (f.route !== '' && event.route !== f.route) return false;
  if (f.clientIp !== '' && event.clientIp !== f.clientIp) return false;
  return true;
}

export function EventsPage({ id, search }: { id: string | undefined; search: string }) {
  return id !== undefined && id !== '' ? <EventDetail id={decodeURIComponent(id)} /> : <EventList search={search} />;
}

function EventList({ search }: { search: string }) {
  const [draft, setDraft] = useState<Filters>(() => fromSearch(search));
  const [filters, setFilters] = useState<Filters>(() => fromSearch(search));
  const [items, setItems] = useState<SecurityEvent[]>([]);
  const [cursor, setCursor] = useState<string | null | undefined>();
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<string | undefined>();
  const [fresh, setFresh] = useState<Set<string>>(new Set());
  const current = useRef(filters);
  current.current = filters;

  const fetchPage = (f: Filters, after?: string) =>
    api<Page<SecurityEvent>>('GET', `/api/events${query({ ...f, limit: PAGE_SIZE, cursor: after })}`);

  /** Puts newer events on top, each once; marks them for a moment. */
  const addNewer = (incoming: SecurityEvent[]) => {
    setItems((list) => {
      const known = new Set(list.map((e) => e.id));
      const added = incoming.filter((e) => !known.has(e.id));
      if (added.length === 0) return list;
      setFresh(new Set(added.map((e) => e.id)));
      return [...added, ...list];
    });
  };

  useEffect(() => {
    let stale = false;
    setLoading(true);
    fetchPage(filters).then(
      (page) => {
        if (stale) return;
        setItems(page.items ?? []);
        setCursor(page.nextCursor);
        setError(undefined);
        setLoading(false);
      },
      (e) => {
        if (stale) return;
        setError(errorText(e));
        setLoading(false);
      },
    );
    return () => {
      stale = true;
    };
  }, [filters]);

  useEffect(() => onSecurityEvent((event) => matches(event, current.current) && addNewer([event])), []);

  // Without the live stream (or if it misses one), the newest page every few seconds.
  useInterval(() => {
    if (isLive()) return;
    fetchPage(current.current).then((page) => addNewer(page.items ?? []), () => undefined);
  }, 3000);

  const older = async () => {
    if (cursor === undefined || cursor === null) return;
    try {
      const page = await fetchPage(filters, cursor);
      setItems((list) => {
        const known = new Set(list.map((e) => e.id));
        return [...list, ...(page.items ?? []).filter((e) => !known.has(e.id))];
      });
      setCursor(page.nextCursor);
    } catch (e) {
      setError(errorText(e));
    }
  };

  const apply = (event: Event) => {
    event.preventDefault();
    setFilters({ ...draft });
  };
  const clear = () => {
    setDraft(EMPTY);
    setFilters(EMPTY);
  };
  const field = (name: keyof Filters) => ({
    value: draft[name],
    onInput: (e: Event) => setDraft({ ...draft, [name]: (e.currentTarget as HTMLInputElement).value }),
  });

  return (
    <section data-testid="page-events">
      <header class="page-head">
        <h1>Security events</h1>
        <span class="muted">newest first{isLive() ? ' · live' : ''}</span>
      </header>
      <form class="card filters" onSubmit={apply} data-testid="event-filters">
        <label>
          Type or prefix
          <input placeholder="authn_" {...field('type')} data-testid="filter-type" />
        </label>
        <label>
          Level
          <select {...field('level')} data-testid="filter-level">
            <option value="">any</option>
            {LEVELS.map((l) => (
              <option key={l} value={l}>
                {l}
              </option>
            ))}
          </select>
        </label>
        <label>
          Route
          <input placeholder="notes" {...field('route')} data-testid="filter-route" />
        </label>
        <label>
          Client IP
          <input placeholder="203.0.113.9" {...field('clientIp')} data-testid="filter-client-ip" />
        </label>
        <div class="filter-actions">
          <button type="submit" class="primary" data-testid="filter-apply">
            Apply
          </button>
          <button type="button" class="ghost" onClick={clear}>
            Clear
          </button>
        </div>
      </form>
      {error !== undefined && <p class="error" role="alert">{error}</p>}
      <div class="card flush">
        <table class="table" data-testid="events-table">
          <thead>
            <tr>
              <th>Time</th>
              <th>Level</th>
              <th>Type</th>
              <th>Route</th>
              <th>Client</th>
              <th>Description</th>
            </tr>
          </thead>
          <tbody>
            {items.map((e) => (
              <tr key={e.id} class={fresh.has(e.id) ? 'fresh' : ''} data-testid="event-row" data-event-id={e.id} data-event-type={e.type}>
                <td class="nowrap">
                  <a href={`#/events/${encodeURIComponent(e.id)}`} data-testid="event-link">
                    {time(e.time)}
                  </a>
                </td>
                <td>
                  <span class={`badge level-${e.level.toLowerCase()}`}>{e.level}</span>
                </td>
                <td class="mono">{e.type}</td>
                <td>{dash(e.route)}</td>
                <td class="mono">{dash(e.clientIp)}</td>
                <td class="wrap">{dash(e.description)}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {!loading && items.length === 0 && <p class="empty">No security events match.</p>}
        {loading && <p class="empty">Loading…</p>}
      </div>
      {cursor !== undefined && cursor !== null && (
        <div class="pager">
          <button type="button" onClick={older} data-testid="events-older">
            Older events
          </button>
        </div>
      )}
    </section>
  );
}

/** Fields the list filters on link to the list filtered by them. */
const FILTERABLE = new Set<keyof SecurityEvent>(['type', 'route', 'clientIp']);

function FieldValue({ event, name }: { event: SecurityEvent; name: keyof SecurityEvent }) {
  const value = event[name];
  if (name === 'level') return <span class={`badge level-${String(value).toLowerCase()}`}>{String(value)}</span>;
  if (name === 'time') return <>{`${time(event.time)} (${event.time})`}</>;
  const text = dash(typeof value === 'object' && value !== null ? JSON.stringify(value) : value);
  if (FILTERABLE.has(name) && typeof value === 'string' && value !== '') {
    return (
      <>
        {text}{' '}
        <a class="small" href={`#/events${query({ [name]: value })}`} title={`Security events with this ${name}`}>
          all such events
        </a>
      </>
    );
  }
  return <>{text}</>;
}

const FIELDS: (keyof SecurityEvent)[] = ['id', 'time', 'event', 'type', 'level', 'description', 'requestId', 'clientIp', 'route', 'actor', 'subject'];

function EventDetail({ id }: { id: string }) {
  const [event, setEvent] = useState<SecurityEvent | undefined>();
  const [error, setError] = useState<string | undefined>();
  useEffect(() => {
    api<SecurityEvent>('GET', `/api/events/${encodeURIComponent(id)}`).then(setEvent, (e) => setError(errorText(e)));
  }, [id]);
  const extra = event === undefined ? [] : Object.keys(event).filter((k) => !FIELDS.includes(k as keyof SecurityEvent) && k !== 'data');
  return (
    <section data-testid="page-event-detail">
      <header class="page-head">
        <h1>Security event {id}</h1>
        <a href="#/events" data-testid="event-back">
          ← All events
        </a>
      </header>
      {error !== undefined && <p class="error" role="alert">{error}</p>}
      {event !== undefined && (
        <div class="card" data-testid="event-detail">
          <dl class="fields">
            {[...FIELDS, ...(extra as (keyof SecurityEvent)[])].map((k) => (
              <Fragment key={k}>
                <dt>{k}</dt>
                <dd class={k === 'level' ? '' : 'mono'} data-testid={`event-field-${k}`}>
                  <FieldValue event={event} name={k} />
                </dd>
              </Fragment>
            ))}
          </dl>
          <h2>data</h2>
          <pre class="json" data-testid="event-data">
            {JSON.stringify(event.data ?? null, null, 2)}
          </pre>
        </div>
      )}
    </section>
  );
}
