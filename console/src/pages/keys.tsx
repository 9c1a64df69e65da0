import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, ApiError, errorText, query, type ApiKey, type Page, type User } from '../api';
import { dash, time, useSubmit } from '../util';

const EXPIRY = [
  { value: '', label: 'the default' },
  { value: '7d', label: '7 days' },
  { value: '30d', label: '30 days' },
  { value: '90d', label: '90 days' },
  { value: '365d', label: '1 year' },
];

const ownerOf = (k: ApiKey): string => k.ownerId ?? k.userId ?? '–';

type State = { kind: 'loading' } | { kind: 'disabled' } | { kind: 'error'; message: string } | { kind: 'ready'; users: User[]; keys: ApiKey[] };

export function KeysPage() {
  const [state, setState] = useState<State>({ kind: 'loading' });
  const [owner, setOwner] = useState('');
  const [secret, setSecret] = useState<{ key: ApiKey; secret: string } | undefined>();
  const [revoking, setRevoking] = useState<ApiKey | undefined>();
  const [notice, setNotice] = useState<string | undefined>();

  const load = async (userId = owner) => {
    try {
      const [users, keys] = await Promise.all([
        api<Page<User>>('GET', `/api/users${query({ limit: 200 })}`),
        api<Page<ApiKey>>('GET', `/api/apikeys${query({ userId, limit: 200 })}`),
      ]);
      setState({ kind: 'ready', users: users.items ?? [], keys: keys.items ?? [] });
    } catch (e) {
      if (e instanceof ApiError && (e.code === 'RMP_ADMIN_IDENTITY_DISABLED' || e.status === 404)) setState({ kind: 'disabled' });
      else setState({ kind: 'error', message: errorText(e) });
    }
  };
  useEffect(() => void load(), []);

  const revoke = async (key: ApiKey) => {
    try {
      await api('DELETE', `/api/apikeys/${encodeURIComponent(key.id)}`);
      setNotice(`Key “${key.name}” (${key.prefix ?? key.id}) revoked.`);
    } catch (e) {
      setNotice(`Could not revoke: ${errorText(e)}`);
    }
    setRevoking(undefined);
    await load();
  };

  if (state.kind === 'loading') return <p class="muted">Loading…</p>;
  if (state.kind === 'disabled') {
    return (
      <section data-testid="page-keys">
        <header class="page-head">
          <h1>Consumers & API keys</h1>
        </header>
        <div class="card empty-state" data-testid="identity-disabled">
          <h2>The identity service is off</h2>
          <p>
            This gateway runs without its identity service, so there are no users or API keys to manage here. Enable <code>identity</code> (with <code>storage</code>) in the config to
            manage consumers from the console.
          </p>
        </div>
      </section>
    );
  }
  if (state.kind === 'error') return <p class="error" role="alert">{state.message}</p>;

  const emailOf = new Map(state.users.map((u) => [u.id, u.email]));
  return (
    <section data-testid="page-keys">
      <header class="page-head">
        <h1>Consumers & API keys</h1>
        <span class="muted">{state.users.length} user(s)</span>
      </header>
      {notice !== undefined && (
        <p class="notice" role="status" data-testid="keys-notice">
          {notice}
        </p>
      )}
      <div class="grid keys">
        <div class="card flush">
          <h2 class="pad">Users</h2>
          <table class="table" data-testid="users-table">
            <thead>
              <tr>
                <th>Email</th>
                <th>Roles</th>
                <th>Status</th>
              </tr>
            </thead>
            <tbody>
              {state.users.map((u) => (
                <tr key={u.id} data-testid="user-row" data-user-id={u.id}>
                  <td>{u.email}</td>
                  <td>{(u.roles ?? []).join(', ') || '–'}</td>
                  <td>{dash(u.status)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        <CreateKey users={state.users} onCreated={(created) => (setSecret(created), setNotice(undefined), void load())} />
      </div>

      <div class="card flush">
        <div class="pad row">
          <h2>API keys</h2>
          <label class="inline">
            Owner
            <select
              value={owner}
              onInput={(e) => {
                setOwner(e.currentTarget.value);
                void load(e.currentTarget.value);
              }}
              data-testid="keys-owner-filter"
            >
              <option value="">all users</option>
              {state.users.map((u) => (
                <option key={u.id} value={u.id}>
                  {u.email}
                </option>
              ))}
            </select>
          </label>
        </div>
        <table class="table" data-testid="keys-table">
          <thead>
            <tr>
              <th>Name</th>
              <th>Prefix</th>
              <th>Owner</th>
              <th>Scopes</th>
              <th>Created</th>
              <th>Expires</th>
              <th>Last used</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {state.keys.map((k) => (
              <tr key={k.id} data-testid="key-row" data-key-id={k.id} data-key-name={k.name} class={k.revokedAt || k.status === 'revoked' ? 'revoked' : ''}>
                <td>{k.name}</td>
                <td class="mono">{dash(k.prefix)}</td>
                <td>{emailOf.get(ownerOf(k)) ?? ownerOf(k)}</td>
                <td class="mono">{(k.scopes ?? []).join(' ') || '–'}</td>
                <td class="nowrap">{time(k.createdAt)}</td>
                <td class="nowrap">{k.expiresAt ? time(k.expiresAt) : 'never'}</td>
                <td class="nowrap">{time(k.lastUsedAt)}</td>
                <td>
                  {k.revokedAt || k.status === 'revoked' || k.status === 'expired' ? (
                    <span class="badge off" data-testid="key-revoked">
                      {k.status ?? 'revoked'}
                    </span>
                  ) : (
                    <button type="button" class="danger small" onClick={() => setRevoking(k)} data-testid="key-revoke">
                      Revoke
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {state.keys.length === 0 && <p class="empty">No API keys.</p>}
      </div>

      {secret !== undefined && (
        <Dialog onClose={() => setSecret(undefined)} testid="secret-dialog">
          <h2>API key “{secret.key.name}” created</h2>
          <p class="warning">Copy the secret now: it is stored only as a hash and will not be shown again.</p>
          <SecretBox secret={secret.secret} />
          <div class="dialog-actions">
            <button type="button" class="primary" onClick={() => setSecret(undefined)} data-testid="secret-close">
              I have copied it
            </button>
          </div>
        </Dialog>
      )}

      {revoking !== undefined && (
        <Dialog onClose={() => setRevoking(undefined)} testid="revoke-dialog">
          <h2>Revoke “{revoking.name}”?</h2>
          <p>
            Requests with this key (<span class="mono">{revoking.prefix ?? revoking.id}</span>, owned by {emailOf.get(ownerOf(revoking)) ?? ownerOf(revoking)}) are refused at once, on every
            node. This cannot be undone.
          </p>
          <div class="dialog-actions">
            <button type="button" class="ghost" onClick={() => setRevoking(undefined)}>
              Cancel
            </button>
            <button type="button" class="danger" onClick={() => void revoke(revoking)} data-testid="revoke-confirm">
              Revoke
            </button>
          </div>
        </Dialog>
      )}
    </section>
  );
}

function CreateKey({ users, onCreated }: { users: User[]; onCreated: (created: { key: ApiKey; secret: string }) => void }) {
  const [ownerId, setOwnerId] = useState('');
  const [name, setName] = useState('');
  const [scopes, setScopes] = useState('');
  const [expiresIn, setExpiresIn] = useState('');
  const { busy, error, submit } = useSubmit(async () => {
    const body = {
      ownerId: ownerId || users[0]?.id,
      name: name.trim(),
      scopes: scopes.split(/[\s,]+/).filter((s) => s !== ''),
      ...(expiresIn !== '' ? { expiresIn } : {}),
    };
    const created = await api<{ key: ApiKey; secret: string }>('POST', '/api/apikeys', body);
    setName('');
    setScopes('');
    onCreated(created);
  });

  return (
    <form class="card form" onSubmit={submit} data-testid="create-key-form">
      <h2>Create an API key</h2>
      <label>
        Owner
        <select value={ownerId} onInput={(e) => setOwnerId(e.currentTarget.value)} required data-testid="create-key-owner">
          <option value="" disabled>
            choose a user
          </option>
          {users.map((u) => (
            <option key={u.id} value={u.id}>
              {u.email}
            </option>
          ))}
        </select>
      </label>
      <label>
        Name
        <input value={name} onInput={(e) => setName(e.currentTarget.value)} required maxLength={100} placeholder="ci-deploy" data-testid="create-key-name" />
      </label>
      <label>
        Scopes <span class="muted">(space or comma separated; the owner's scopes at most)</span>
        <input value={scopes} onInput={(e) => setScopes(e.currentTarget.value)} placeholder="notes:read" data-testid="create-key-scopes" />
      </label>
      <label>
        Expires in
        <select value={expiresIn} onInput={(e) => setExpiresIn(e.currentTarget.value)} data-testid="create-key-expiry">
          {EXPIRY.map((x) => (
            <option key={x.value} value={x.value}>
              {x.label}
            </option>
          ))}
        </select>
      </label>
      {error !== undefined && (
        <p class="error" role="alert" data-testid="create-key-error">
          {error}
        </p>
      )}
      <button type="submit" class="primary" disabled={busy} data-testid="create-key-submit">
        Create key
      </button>
    </form>
  );
}

function SecretBox({ secret }: { secret: string }) {
  const [copied, setCopied] = useState<'yes' | 'no' | undefined>();
  const code = useRef<HTMLElement>(null);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(secret);
      setCopied('yes');
    } catch {
      // No clipboard permission: select the text for a manual copy.
      const range = document.createRange();
      range.selectNodeContents(code.current!);
      const selection = window.getSelection();
      selection?.removeAllRanges();
      selection?.addRange(range);
      setCopied('no');
    }
  };
  return (
    <div class="secret">
      <code ref={code} data-testid="secret-value">
        {secret}
      </code>
      <button type="button" onClick={() => void copy()} data-testid="secret-copy">
        {copied === 'yes' ? 'Copied' : 'Copy'}
      </button>
      {copied === 'no' && <span class="muted small">Selected: press Ctrl+C to copy.</span>}
    </div>
  );
}

/** A modal `<dialog>`: Escape and the backdrop close it through `onClose`. */
function Dialog({ children, onClose, testid }: { children: ComponentChildren; onClose: () => void; testid: string }) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const dialog = ref.current!;
    dialog.showModal();
    const cancel = (e: Event) => {
      e.preventDefault();
      onClose();
    };
    dialog.addEventListener('cancel', cancel);
    return () => {
      dialog.removeEventListener('cancel', cancel);
      if (dialog.open) dialog.close();
    };
  }, []);
  return (
    <dialog ref={ref} class="dialog" data-testid={testid}>
      {children}
    </dialog>
  );
}
