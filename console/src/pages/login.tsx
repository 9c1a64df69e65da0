import { useState } from 'preact/hooks';
import { api, ApiError, type Session } from '../api';
import { useSubmit } from '../util';

type Step = { kind: 'password' } | { kind: 'token' } | { kind: 'mfa'; mfaToken: string } | { kind: 'new-password'; passwordChangeToken: string };

export function Login({ onSignedIn }: { onSignedIn: (session: Session, email: string | undefined) => void }) {
  const [step, setStep] = useState<Step>({ kind: 'password' });
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [token, setToken] = useState('');
  const [code, setCode] = useState('');
  const [newPassword, setNewPassword] = useState('');
  const [repeat, setRepeat] = useState('');
  const { busy, error, setError, submit } = useSubmit(
    async () => {
      let session: Session;
      if (step.kind === 'password') session = await api<Session>('POST', '/api/session', { email, password });
      else if (step.kind === 'token') session = await api<Session>('POST', '/api/session', { token });
      else if (step.kind === 'new-password') {
        if (newPassword !== repeat) throw new Error('The two new passwords differ.');
        session = await api<Session>('POST', '/api/session/password', { passwordChangeToken: step.passwordChangeToken, newPassword });
      } else {
        const factor = /^\d{6,8}$/.test(code.trim()) ? { code: code.trim() } : { recoveryCode: code.trim() };
        session = await api<Session>('POST', '/api/session/mfa', { mfaToken: step.mfaToken, ...factor });
      }
      setPassword('');
      setToken('');
      setNewPassword('');
      setRepeat('');
      onSignedIn(session, step.kind === 'token' ? undefined : email.trim().toLowerCase());
    },
    (e) => {
      if (e instanceof ApiError && e.code === 'RMP_MFA_REQUIRED' && typeof e.body.mfaToken === 'string') {
        setPassword('');
        setStep({ kind: 'mfa', mfaToken: e.body.mfaToken });
        return true;
      }
      if (e instanceof ApiError && e.code === 'RMP_PASSWORD_CHANGE_REQUIRED' && typeof e.body.passwordChangeToken === 'string') {
        // A first login with the one-time password: a new password, then the session.
        setPassword('');
        setStep({ kind: 'new-password', passwordChangeToken: e.body.passwordChangeToken });
        return true;
      }
      return false;
    },
  );

  const switchTo = (kind: 'password' | 'token') => {
    setError(undefined);
    setStep({ kind });
  };

  return (
    <div class="login">
      <form class="card login-card" onSubmit={submit} data-testid="login-form">
        <div class="brand large">
          <img src="/favicon.svg" alt="" width="28" height="28" />
          <span>Rampart console</span>
        </div>
        {step.kind === 'password' && (
          <>
            <label>
              Email
              <input type="email" name="email" autocomplete="username" required value={email} onInput={(e) => setEmail(e.currentTarget.value)} data-testid="login-email" />
            </label>
            <label>
              Password
              <input type="password" name="password" autocomplete="current-password" required value={password} onInput={(e) => setPassword(e.currentTarget.value)} data-testid="login-password" />
            </label>
          </>
        )}
        {step.kind === 'token' && (
          <label>
            Admin token
            <input type="password" name="token" autocomplete="off" required value={token} onInput={(e) => setToken(e.currentTarget.value)} data-testid="login-token" />
          </label>
        )}
        {step.kind === 'mfa' && (
          <label>
            Authentication code (or a recovery code)
            <input type="text" name="code" inputMode="numeric" autocomplete="one-time-code" required value={code} onInput={(e) => setCode(e.currentTarget.value)} data-testid="login-mfa-code" />
          </label>
        )}
        {step.kind === 'new-password' && (
          <>
            <p class="muted small">This account has a one-time password: choose a new one to continue.</p>
            <label>
              New password
              <input type="password" name="new-password" autocomplete="new-password" required value={newPassword} onInput={(e) => setNewPassword(e.currentTarget.value)} data-testid="login-new-password" />
            </label>
            <label>
              New password again
              <input type="password" name="repeat-password" autocomplete="new-password" required value={repeat} onInput={(e) => setRepeat(e.currentTarget.value)} data-testid="login-repeat-password" />
            </label>
          </>
        )}
        {error !== undefined && (
          <p class="error" role="alert" data-testid="login-error">
            {error}
          </p>
        )}
        <button type="submit" class="primary" disabled={busy} data-testid="login-submit">
          {step.kind === 'mfa' ? 'Verify' : step.kind === 'new-password' ? 'Set password and log in' : 'Log in'}
        </button>
        <p class="muted small">
          {step.kind === 'password' && (
            <a href="#" onClick={(e) => (e.preventDefault(), switchTo('token'))} data-testid="login-use-token">
              Use the admin token instead
            </a>
          )}
          {step.kind !== 'password' && (
            <a href="#" onClick={(e) => (e.preventDefault(), switchTo('password'))}>
              Log in with email and password
            </a>
          )}
        </p>
      </form>
    </div>
  );
}
