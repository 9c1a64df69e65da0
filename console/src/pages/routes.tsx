import { useEffect, useState } from 'preact/hooks';
import { api, errorText, type Page, type RouteInfo } from '../api';
import { dash } from '../util';

export function RoutesPage() {
  const [routes, setRoutes] = useState<RouteInfo[] | undefined>();
  const [error, setError] = useState<string | undefined>();
  const [filter, setFilter] = useState('');
  useEffect(() => {
    api<Page<RouteInfo>>('GET', '/api/routes').then((r) => setRoutes(r.items ?? []), (e) => setError(errorText(e)));
  }, []);

  const needle = filter.trim().toLowerCase();
  const shown = (routes ?? []).filter((r) => needle === '' || [r.name, r.upstream ?? '', ...(r.paths ?? [])].some((text) => text.toLowerCase().includes(needle)));

  return (
    <section data-testid="page-routes">
      <header class="page-head">
        <h1>Routes</h1>
        {routes !== undefined && <span class="muted">{routes.length} route(s), in match order</span>}
        <input class="search" type="search" placeholder="Filter by name, path or upstream" value={filter} onInput={(e) => setFilter(e.currentTarget.value)} data-testid="routes-filter" />
      </header>
      {error !== undefined && <p class="error" role="alert">{error}</p>}
      {routes?.length === 0 && <p class="card empty">No routes in the current config.</p>}
      {shown.map((r) => (
        <article key={r.name} class="card route" data-testid="route-card" data-route={r.name}>
          <header class="route-head">
            <h2>{r.name}</h2>
            <span class="methods">{(r.methods ?? []).length === 0 ? <span class="method">ANY</span> : r.methods!.map((m) => <span key={m} class="method">{m}</span>)}</span>
            <span class="mono">{(r.paths ?? []).join('  ') || '–'}</span>
            {(r.hosts ?? []).length > 0 && <span class="muted">on {r.hosts!.join(', ')}</span>}
            <span class="spacer" />
            {r.public === true && <span class="badge warn">public</span>}
            <span class="muted">
              upstream <b class="mono">{r.upstream ? r.upstream : 'built-in'}</b>
            </span>
          </header>
          <div class="chips" data-testid="route-protection">
            {(r.protection ?? []).map((p) => (
              <span key={p.id} class={`chip ${p.on ? 'on' : 'off'}`} title={p.detail || (p.on ? 'on' : 'off')} data-testid={`protection-${p.id}`} data-on={String(p.on)}>
                <span class="dot" />
                {p.label}
              </span>
            ))}
          </div>
          <details class="route-details">
            <summary>Details: protection and {(r.policies ?? []).length} policies</summary>
            <div class="route-body">
              <table class="table compact">
                <tbody>
                  {(r.protection ?? []).map((p) => (
                    <tr key={p.id}>
                      <td>
                        <span class={`badge ${p.on ? 'on' : 'off'}`}>{p.on ? 'on' : 'off'}</span>
                      </td>
                      <td class="nowrap">{p.label}</td>
                      <td class="muted wrap">{dash(p.detail)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
              <table class="table compact" data-testid="route-policies">
                <thead>
                  <tr>
                    <th>Policy</th>
                    <th>Phase</th>
                  </tr>
                </thead>
                <tbody>
                  {(r.policies ?? []).map((p) => (
                    <tr key={`${p.phase}:${p.name}`}>
                      <td class="mono">{p.name}</td>
                      <td class="muted">{p.phase}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          </details>
        </article>
      ))}
    </section>
  );
}
