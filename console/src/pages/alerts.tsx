import { useState } from 'preact/hooks';
import { api, errorText, type Alerts } from '../api';
import { count, dash, time, useInterval } from '../util';

export function AlertsPage() {
  const [alerts, setAlerts] = useState<Alerts | undefined>();
  const [error, setError] = useState<string | undefined>();
  useInterval(
    () => {
      api<Alerts>('GET', '/api/alerts').then(
        (a) => {
          setAlerts(a);
          setError(undefined);
        },
        (e) => setError(errorText(e)),
      );
    },
    5000,
    true,
  );
  const rules = alerts?.rules ?? [];
  const history = alerts?.history ?? [];

  return (
    <section data-testid="page-alerts">
      <header class="page-head">
        <h1>Alerts</h1>
        <span class="muted">{rules.filter((r) => r.firing === true).length} firing</span>
      </header>
      {error !== undefined && <p class="error" role="alert">{error}</p>}
      <div class="card flush">
        <h2 class="pad">Rules</h2>
        <table class="table" data-testid="alert-rules">
          <thead>
            <tr>
              <th>State</th>
              <th>Rule</th>
              <th>Kind</th>
              <th>Description</th>
            </tr>
          </thead>
          <tbody>
            {rules.map((r) => (
              <tr key={r.name} data-testid="alert-rule" data-firing={String(r.firing === true)}>
                <td>{r.firing === true ? <span class="badge bad">firing</span> : <span class="badge on">ok</span>}</td>
                <td class="mono nowrap">{r.name}</td>
                <td>{dash(r.kind)}</td>
                <td class="wrap">{dash(r.description)}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {alerts !== undefined && rules.length === 0 && <p class="empty">No alert rules are configured.</p>}
      </div>
      <div class="card flush">
        <h2 class="pad">History</h2>
        <table class="table" data-testid="alert-history">
          <thead>
            <tr>
              <th>Fired</th>
              <th>Rule</th>
              <th>Severity</th>
              <th>Summary</th>
              <th>Notifications</th>
            </tr>
          </thead>
          <tbody>
            {history.map((h) => (
              <tr key={h.id} data-testid="alert-fired">
                <td class="nowrap">{time(h.firedAt)}</td>
                <td class="mono nowrap">{h.rule}</td>
                <td>{h.severity !== undefined ? <span class={`badge level-${h.severity.toLowerCase()}`}>{h.severity}</span> : '–'}</td>
                <td class="wrap">
                  {dash(h.summary)}
                  {h.summary === undefined && h.value !== undefined && h.threshold !== undefined && (
                    <span class="muted">
                      {' '}
                      ({count(h.value)} over {count(h.threshold)})
                    </span>
                  )}
                </td>
                <td data-testid="alert-notifications">
                  {(h.notifications ?? []).map((n) => (
                    <span key={n.target} class={`badge ${n.status === 'sent' ? 'on' : n.status === 'pending' ? 'warn' : 'bad'}`} title={n.error ?? `${n.attempts ?? 1} attempt(s)`}>
                      {n.target}: {n.status}
                      {(n.attempts ?? 1) > 1 ? ` ×${n.attempts}` : ''}
                    </span>
                  ))}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {alerts !== undefined && history.length === 0 && <p class="empty">No alert has fired.</p>}
      </div>
    </section>
  );
}
