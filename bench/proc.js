// Child processes and their CPU time, for the benchmark harness.
import { spawn, execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent } from 'undici';

/** Clock ticks per second of /proc/<pid>/stat times (`getconf CLK_TCK`, almost always 100). */
export const CLK_TCK = (() => {
  try {
    const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isInteger(n) && n > 0 ? n : 100;
  } catch {
    return 100;
  }
})();

/** utime + stime of a process (all its threads), in microseconds. */
export function cpuMicros(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) is in parentheses and may hold spaces: count fields after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state); utime is field 14, stime field 15.
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks * 1e6) / CLK_TCK;
}

/** A free TCP port on 127.0.0.1 (released before it is returned, so a small race remains). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

const children = new Set();

/**
 * Starts `node <args>` as a child; keeps the tail of its output for error messages.
 * Every child is tracked so that killAll() (and the exit hook) can stop it.
 */
export function startNode(name, args, env = {}) {
  const child = spawn(process.execPath, args, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const tail = [];
  const keep = (chunk) => {
    tail.push(chunk.toString('utf8'));
    if (tail.length > 50) tail.shift();
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const handle = {
    name,
    child,
    pid: child.pid,
    exited: false,
    exitCode: null,
    output: () => tail.join('').trim().split('\n').slice(-20).join('\n'),
  };
  handle.done = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      handle.exited = true;
      handle.exitCode = code ?? signal;
      children.delete(handle);
      resolve();
    });
  });
  child.once('error', (error) => {
    handle.exited = true;
    handle.exitCode = error.message;
  });
  children.add(handle);
  return handle;
}

/**
 * Polls `url` until it answers; throws unless the answer is a 200, or if the child exits or
 * `timeoutMs` passes first.
 */
const insecureLocal = new Agent({ connect: { rejectUnauthorized: false } });

export async function waitReady(handle, url, timeoutMs = 20_000, headers = undefined) {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (handle.exited) {
      throw new Error(`${handle.name} exited (${handle.exitCode}) before it was ready:\n${handle.output()}`);
    }
    try {
      // The quickstart target serves HTTPS with its self-signed development certificate.
      const res = await fetch(url, { signal: AbortSignal.timeout(1000), headers, ...(url.startsWith('https:') ? { dispatcher: insecureLocal } : {}) });
      await res.arrayBuffer();
      if (res.status === 200) return;
      throw new Error(`${handle.name}: GET ${url} answered ${res.status}; the benchmark needs a 200`);
    } catch (error) {
      if (error.message.startsWith(handle.name)) throw error;
      last = error.cause?.code ?? error.message;
    }
    await sleep(100);
  }
  throw new Error(`${handle.name} was not ready at ${url} after ${timeoutMs} ms (${last}):\n${handle.output()}`);
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the child is gone. */
export async function stop(handle, graceMs = 5000) {
  if (handle.exited) return;
  handle.child.kill('SIGTERM');
  const timer = setTimeout(() => {
    if (!handle.exited) handle.child.kill('SIGKILL');
  }, graceMs);
  await handle.done;
  clearTimeout(timer);
}

/** Stops every child still running. */
export async function killAll(graceMs) {
  await Promise.all([...children].map((h) => stop(h, graceMs)));
}

// Last resort: whatever way the harness ends, no child outlives it.
process.on('exit', () => {
  for (const h of children) {
    try {
      h.child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
});

/**
 * The quickstart's notes API needs a login: registers a bench user with the identity service and
 * returns its access token (valid 10 minutes, longer than any run of one target).
 */
export async function quickstartToken(origin) {
  const credentials = JSON.stringify({ email: `bench-${process.pid}@example.com`, password: 'a passphrase for the benchmark' });
  const post = (path) =>
    fetch(`${origin}${path}`, { method: 'POST', body: credentials, headers: { 'content-type': 'application/json' }, dispatcher: insecureLocal, signal: AbortSignal.timeout(5000) });
  const registered = await post('/api/v1/auth/register');
  await registered.arrayBuffer();
  if (registered.status !== 202) throw new Error(`quickstart: register answered ${registered.status}`);
  const login = await post('/api/v1/auth/login');
  const body = await login.json();
  if (login.status !== 200) throw new Error(`quickstart: login answered ${login.status}: ${JSON.stringify(body)}`);
  return body.access_token;
}

/** An API key of the quickstart's identity service, made with an access token (read-only scope). */
export async function quickstartApiKey(origin, accessToken) {
  const made = await fetch(`${origin}/api/v1/api-keys`, {
    method: 'POST',
    body: JSON.stringify({ name: 'bench', scopes: ['notes:read'] }),
    headers: { 'content-type': 'application/json', authorization: `Bearer ${accessToken}` },
    dispatcher: insecureLocal,
    signal: AbortSignal.timeout(5000),
  });
  const body = await made.json();
  if (made.status !== 201) throw new Error(`quickstart: API key answered ${made.status}: ${JSON.stringify(body)}`);
  return body.key;
}
