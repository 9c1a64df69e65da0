import { useEffect, useState } from 'preact/hooks';
import { api, errorText, type Page, type RouteInfo } from '../api';
import { dash } from '../util';

export function RoutesPage() {
  const [routes, setRoutes] = useState<RouteInfo[] | undefined>();
  const [error, setError] = useState<string | undefined>();
  useEffect(() => {
    api<Page<RouteInfo>>('GET', '/api/routes').then((r) => setRoutes(r.items ?? []), (e) => setError(errorText(e)));
  }, []);

  return (
    <section data-testid="page-routes">
      <header class="page-head">
        <h1>Routes</h1>
        {routes !== undefined && <span class="muted">{routes.length} route(s), in match order</span>}
      </header>
      {error !== undefined && <p class="error" role="alert">{error}</p>}
      {routes?.length === 0 && <p class="card empty">No routes in the current config.</p>}
      {routes?.map((r) => (
        <article key={r.name} class="card route" data-testid="route-card" data-route={r.name}>
          <header class="route-head">
            <h2>{r.name}</h2>
            {r.public === true && <span class="badge warn">public</span>}
            <span class="muted">
              upstream <b class="mono">{dash(r.upstream)}</b>
            </span>
          </header>
          <div class="route-match">
            <span class="methods">{(r.methods ?? []).length === 0 ? <span class="method">any</span> : r.methods!.map((m) => <span key={m} class="method">{m}</span>)}</span>
            <span class="mono">{(r.paths ?? []).join('  ') || '–'}</span>
            {(r.hosts ?? []).length > 0 && <span class="muted"> on {r.hosts!.join(', ')}</span>}
          </div>
          <div class="route-body">
            <div>
              <h3>Protection</h3>
              <ul class="protection" data-testid="route-protection">
                {(r.protection ?? []).map((p) => (
                  <li key={p.id} data-testid={`protection-${p.id}`} data-on={String(p.on)}>
                    <span class={`badge ${p.on ? 'on' : 'off'}`}>{p.on ? 'on' : 'off'}</span>
                    <span class="label">{p.label}</span>
                    {p.detail !== undefined && p.detail !== '' && <span class="muted detail">{p.detail}</span>}
                  </li>
                ))}
              </ul>
            </div>
            <div>
              <h3>Policies</h3>
              <table class="table compact" data-testid="route-policies">
                <tbody>
                  {(r.policies ?? []).map((p) => (
                    <tr key={`${p.phase}:${p.name}`}>
                      <td class="mono">{p.name}</td>
                      <td class="muted">{p.phase}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
              {(r.policies ?? []).length === 0 && <p class="muted">None.</p>}
            </div>
          </div>
        </article>
      ))}
    </section>
  );
}
