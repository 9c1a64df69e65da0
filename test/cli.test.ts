import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { killAll, ROOT, runCli } from './helpers/process.js';
import { main } from '../src/cli/main.js';

/** The `rampart` command line, run from source as a real process: exit codes and exact output. */

const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

let dir: string;
let occupied: Server | undefined;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'rampart-cli-'));
});
afterEach(async () => {
  await killAll();
  if (occupied !== undefined) {
    occupied.close();
    await once(occupied, 'close');
    occupied = undefined;
  }
  rmSync(dir, { recursive: true, force: true });
});

/** Writes `lines` as rampart.yaml in the test's directory; line N of the file is lines[N - 1]. */
function writeConfig(lines: string[], name = 'rampart.yaml'): string {
  const file = join(dir, name);
  writeFileSync(file, lines.join('\n') + '\n');
  return file;
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** A valid config with a gateway port given as `port` (a number or a `${…}` reference). */
function validLines(port: string): string[] {
  return [
    'server:', //                                 1
    '  listen:', //                               2
    '    host: 127.0.0.1', //                     3
    `    port: ${port}`, //                       4  (value at column 11)
    'admin:', //                                  5
    '  enabled: false', //                        6
    'upstreams:', //                              7
    '  notes:', //                                8
    '    targets:', //                            9
    '      - url: http://127.0.0.1:3001', //      10
    'routes:', //                                 11
    '  - name: notes', //                         12
    '    match:', //                              13
    '      path: /api/notes', //                  14
    '      methods: [GET, POST]', //              15
    '    upstream: notes', //                     16
    '    public: true', //                        17
  ];
}

describe('rampart validate', () => {
  it('prints one FILE:LINE:COLUMN: path: message line per problem and exits 1', async () => {
    const file = writeConfig([
      'server:', //                               1
      '  listen:', //                             2
      '    host: 127.0.0.1', //                   3
      '    port: "abc"', //                       4  wrong type, value at column 11
      'upstreams:', //                            5
      '  x:', //                                  6
      '    targets:', //                          7
      '      - url: http://127.0.0.1:9', //       8
      '    timeouts:', //                         9
      '      conect: 2s', //                      10 typo'd nested key at column 7
      'defaults:', //                             11
      '  request-id: {}', //                      12
      '  rate-limt: {}', //                       13 unknown policy at column 3
      'routes:', //                               14
      '  - name: r', //                           15
      '    match:', //                            16
      '      path: /a', //                        17
      '    upstream: x', //                       18
    ]);
    const { code, stdout, stderr } = await runCli(['validate', '-c', file]);
    expect(code).toBe(1);
    expect(stdout).toEqual([]);
    const at = escape(file);
    expect(stderr, stderr.join('\n')).toHaveLength(4);
    expect(stderr[0]).toMatch(new RegExp(`^${at}:4:11: server\\.listen\\.port: expected an integer, got 'abc'$`));
    expect(stderr[1]).toMatch(new RegExp(`^${at}:10:7: upstreams\\.x\\.timeouts\\.conect: unknown key 'conect'`));
    expect(stderr[2]).toMatch(new RegExp(`^${at}:13:3: defaults\\.rate-limt: unknown policy 'rate-limt'`));
    expect(stderr[3]).toBe('rampart: 3 errors in the config');
  });

  it('suggests the key a typo was meant to be', async () => {
    const file = writeConfig([
      'upstreams:', //                            1
      '  x:', //                                  2
      '    targets:', //                          3
      '      - url: http://127.0.0.1:9', //       4
      '    timeouts:', //                         5
      '      conect: 2s', //                      6
    ]);
    const { code, stderr } = await runCli(['validate', '-c', file]);
    expect(code).toBe(1);
    expect(stderr).toEqual([`${file}:6:7: upstreams.x.timeouts.conect: unknown key 'conect' (did you mean 'connect'?)`, 'rampart: 1 error in the config']);
  });

  it('reports an unknown policy under defaults at its key', async () => {
    const lines = validLines('8080');
    lines.splice(6, 0, 'defaults:', '  rate-limt: {}'); // lines 7 and 8
    const file = writeConfig(lines);
    const { code, stdout, stderr } = await runCli(['validate', '-c', file]);
    expect(code).toBe(1);
    expect(stdout).toEqual([]);
    expect(stderr).toHaveLength(2);
    expect(stderr[0]).toMatch(new RegExp(`^${escape(file)}:8:3: defaults\\.rate-limt: unknown policy 'rate-limt'`));
    expect(stderr[1]).toBe('rampart: 1 error in the config');
  });

  it('prints the summary of a valid config, policies in order, and exits 0', async () => {
    const file = writeConfig(validLines('8080'));
    const { code, stdout, stderr } = await runCli(['validate', '-c', file]);
    // Valid, with a warning at the `server:` key: nothing can be served, only redirected.
    expect(stderr).toEqual([
      `warning: ${file}:2:3: server: no HTTPS: server.tls is not set and no trusted proxy can say a request came over HTTPS (server.trustedProxies), so requests to routes without 'allowInsecure' will only be redirected to https`,
    ]);
    expect(code).toBe(0);
    expect(stdout).toEqual([
      `${file}: valid (mode production)`,
      '  gateway  http://127.0.0.1:8080',
      '  admin    disabled',
      'upstreams (1):',
      '  notes  http://127.0.0.1:3001',
      'routes (1):',
      '  notes  GET,POST /api/notes → notes',
      '    policies: request-id [transport 1000] → limits [transport 950] → cors [cors] → ip-rate-limit [rate-limit-pre] → inspect [validate 400] → upstream-errors [respond 700] → detect [respond 600] → redact [respond 500] → headers [respond] → access-log [observe]',
      '  (no match)  policies: request-id [transport 1000] → limits [transport 950] → cors [cors] → ip-rate-limit [rate-limit-pre] → inspect [validate 400] → headers [respond] → access-log [observe]',
    ]);
  });

  it('refuses a route with no authentication that does not say public: true, at file:line:column', async () => {
    const file = writeConfig(validLines('8080').slice(0, 16));
    const { code, stdout, stderr } = await runCli(['validate', '-c', file]);
    expect(code).toBe(1);
    expect(stdout).toEqual([]);
    expect(stderr).toEqual([
      `${file}:12:11: routes[0].name: route 'notes' has no authentication: add an authentication policy (jwt) to it or to defaults, or say 'public: true' if it is meant to be open`,
      'rampart: 1 error in the config',
    ]);
  });

  it('interpolates ${ENV} from the environment, typed as a number when unquoted', async () => {
    const file = writeConfig(validLines('${RAMPART_TEST_GATEWAY_PORT}'));
    const { code, stdout, stderr } = await runCli(['validate', '-c', file], { env: { RAMPART_TEST_GATEWAY_PORT: '18123' } });
    expect(stderr).toHaveLength(1); // the no-HTTPS warning
    expect(code).toBe(0);
    expect(stdout).toContain('  gateway  http://127.0.0.1:18123');
  });

  it('reports a missing environment variable once, at its file:line:column', async () => {
    const file = writeConfig(validLines('${RAMPART_TEST_UNSET_PORT}'));
    const { code, stdout, stderr } = await runCli(['validate', '-c', file], { env: { RAMPART_TEST_UNSET_PORT: undefined } });
    expect(code).toBe(1);
    expect(stdout).toEqual([]);
    expect(stderr, stderr.join('\n')).toHaveLength(2);
    expect(stderr[0]).toMatch(new RegExp(`^${escape(file)}:4:11: (server\\.listen\\.port: )?environment variable RAMPART_TEST_UNSET_PORT is not set`));
    expect(stderr[1]).toBe('rampart: 1 error in the config');
  });
});

describe('rampart migrate', () => {
  it('migrates the SQLite database named by storage.url (relative to the config) and is idempotent', async () => {
    const file = writeConfig(['storage:', '  url: sqlite:./db/rampart.db']);
    const first = await runCli(['migrate', '-c', file]);
    expect(first.stderr).toEqual([]);
    expect(first.stdout).toEqual(['sqlite: applied 0001-audit-events, 0002-identity, 0003-identity-sessions, 0004-machine-credentials, 0005-audit-filters']);
    expect(first.code).toBe(0);
    expect(existsSync(join(dir, 'db', 'rampart.db'))).toBe(true);
    const again = await runCli(['migrate', '-c', file]);
    expect(again.stdout).toEqual(['sqlite: up to date']);
  });
});

describe('rampart users and keys', () => {
  // In process (these commands return when done): one spawned CLI per command would cost seconds each.
  // On the database directly (`--offline`, after the subcommand): no gateway runs here. The admin
  // API path is test/cli-admin.test.ts.
  const run = async (argv: string[]) => {
    const stdout: string[] = [];
    const stderr: string[] = [];
    const code = await main([...argv.slice(0, 2), '--offline', ...argv.slice(2)], { out: (l) => stdout.push(l), err: (l) => stderr.push(l) });
    return { code, stdout, stderr };
  };
  const identityConfig = () =>
    writeConfig(['mode: development', 'storage:', '  url: sqlite:./db/rampart.db', 'identity:', '  issuer: https://localhost', 'routes: []']);

  it('users create --admin prints a one-time password once; a second admin with the same e-mail is refused', async () => {
    const file = identityConfig();
    const first = await run(['users', 'create', '--admin', 'Root@Example.com', '-c', file]);
    expect(first.code, first.stderr.join('\n')).toBe(0);
    expect(first.stdout[0]).toMatch(/^created admin [0-9a-f-]{36} \(root@example\.com\)$/);
    expect(first.stdout[1]).toMatch(/^one-time password: [A-Za-z2-9]{20}$/);
    const again = await run(['users', 'create', '--admin', 'root@example.com', '-c', file]);
    expect(again.code).toBe(1);
    expect(again.stderr).toEqual(['rampart: A user with this e-mail exists']);
  });

  it('keys list shows current and next; rotate schedules the next key; revoke withdraws one', async () => {
    const file = identityConfig();
    const listed = await run(['keys', 'list', '-c', file]);
    expect(listed.code, listed.stderr.join('\n')).toBe(0);
    expect(listed.stdout.map((l) => l.split(/\s+/)[0])).toEqual(['current', 'next']);
    const next = listed.stdout[1]!.split(/\s+/)[1]!;
    const rotated = await run(['keys', 'rotate', '-c', file]);
    expect(rotated.stdout[0]).toMatch(new RegExp(`^key ${escape(next)} signs from \\d{4}-`));
    const revoked = await run(['keys', 'revoke', next, '-c', file]);
    expect(revoked.code, revoked.stderr.join("\n")).toBe(0);
    const after = await run(['keys', 'list', '-c', file]);
    expect(after.stdout.join('\n')).not.toContain(next);
    const unknown = await run(['keys', 'revoke', 'no-such-kid', '-c', file]);
    expect(unknown).toMatchObject({ code: 1, stderr: ["rampart: no published key 'no-such-kid'"] });
  });

  it('cli-kid-starting-with-dash: a key id that begins with "-" is a key id, not an option', async () => {
    // One thumbprint in 64 begins with '-'; CI once drew one and `keys revoke` answered "unknown option".
    const file = identityConfig();
    const kid = '-' + 'A'.repeat(42);
    for (const argv of [['keys', 'revoke', kid, '-c', file], ['keys', 'revoke', '-c', file, kid], ['keys', 'revoke', '-c', file, '--', kid]]) {
      expect(await run(argv)).toMatchObject({ code: 1, stderr: [`rampart: no published key '${kid}'`] });
    }
  });

  it('explains in one line that the keys were encrypted under another master key', async () => {
    const keyA = Buffer.alloc(32, 1).toString('base64');
    const keyB = Buffer.alloc(32, 2).toString('base64');
    const config = (key: string) => writeConfig(['storage:', '  url: sqlite:./db/keys.db', 'identity:', '  issuer: https://localhost', `  masterKey: ${key}`, 'routes: []']);
    expect((await run(['keys', 'list', '-c', config(keyA)])).code).toBe(0);
    const wrong = await run(['keys', 'list', '-c', config(keyB)]);
    expect(wrong).toMatchObject({ code: 1, stderr: ['rampart: identity service: the keys in the database were encrypted under another master key (identity.masterKey, or data/master.key in development)'] });
  });

  it('apikeys create prints a key once; list shows it without the key; revoke ends it; bad input is one line', async () => {
    const file = identityConfig();
    expect((await run(['users', 'create', '--admin', 'ops@example.com', '-c', file])).code).toBe(0);
    const made = await run(['apikeys', 'create', '--user', 'ops@example.com', '--name', 'nightly export', '--expires', '7d', '-c', file]);
    expect(made.code, made.stderr.join('\n')).toBe(0);
    expect(made.stdout[0]).toMatch(/^created API key ([0-9a-f-]{36}) for ops@example\.com \(scopes: none; expires \d{4}-\d\d-\d\dT[\d:.]+Z\)$/);
    expect(made.stdout[1]).toMatch(/^key: rmp_live_[0-9A-Za-z]{49}$/);
    const id = /API key ([0-9a-f-]{36})/.exec(made.stdout[0]!)![1]!;
    const key = made.stdout[1]!.slice('key: '.length);
    const listed = await run(['apikeys', 'list', '-c', file]);
    expect(listed.stdout).toHaveLength(1);
    expect(listed.stdout[0]).toContain(`${id}  ${key.slice(0, 17)}…  active`);
    expect(listed.stdout.join('\n')).not.toContain(key);
    expect(await run(['apikeys', 'revoke', id, '-c', file])).toMatchObject({ code: 0, stdout: [`revoked ${id} (${key.slice(0, 17)}…)`] });
    expect((await run(['apikeys', 'list', '--user', 'ops@example.com', '-c', file])).stdout[0]).toContain('revoked');
    expect(await run(['apikeys', 'revoke', 'nope', '-c', file])).toMatchObject({ code: 1, stderr: ["rampart: no API key 'nope'"] });
    expect(await run(['apikeys', 'create', '--user', 'nobody@example.com', '-c', file])).toMatchObject({ code: 1, stderr: ["rampart: no user 'nobody@example.com'"] });
    expect(await run(['apikeys', 'create', '--user', 'ops@example.com', '--expires', 'soon', '-c', file])).toMatchObject({ code: 1, stderr: ["rampart: 'soon' is not a duration (e.g. 90d, 12h, 30m)"] });
    const beyond = await run(['apikeys', 'create', '--user', 'ops@example.com', '--scopes', 'everything', '-c', file]);
    expect(beyond).toMatchObject({ code: 1, stderr: ['rampart: An API key cannot grant scopes its creator does not have: everything.'] });
  });

  it('clients create prints a secret once; list shows it by prefix; rotate-secret keeps the old one for the overlap; delete removes it', async () => {
    const file = identityConfig();
    const made = await run(['clients', 'create', '--id', 'billing', '--name', 'Billing service', '--scopes', 'orders:read,orders:write', '-c', file]);
    expect(made.code, made.stderr.join('\n')).toBe(0);
    expect(made.stdout[0]).toBe('created client billing (client_secret_basic; scopes: orders:read orders:write)');
    expect(made.stdout[1]).toMatch(/^client_secret: rmpcs_live_[0-9A-Za-z]{49}$/);
    const secret = made.stdout[1]!.slice('client_secret: '.length);
    const rotated = await run(['clients', 'rotate-secret', 'billing', '--overlap', '2h', '-c', file]);
    expect(rotated.stdout[0]).toMatch(/^client_secret: rmpcs_live_[0-9A-Za-z]{49}$/);
    expect(rotated.stdout[1]).toMatch(/^The previous secrets work until \d{4}-/);
    const listed = await run(['clients', 'list', '-c', file]);
    expect(listed.stdout).toHaveLength(1);
    expect(listed.stdout[0]).toMatch(new RegExp(`^billing  active    client_secret_basic  scopes orders:read orders:write  secrets ${escape(secret.slice(0, 19))}… expiring until \\S+, rmpcs_live_\\w{8}… active$`));
    expect(listed.stdout[0]).not.toContain(secret);
    expect(await run(['clients', 'create', '--id', 'billing', '--name', 'x', '--scopes', 'a', '-c', file])).toMatchObject({ code: 1, stderr: ['rampart: A client with this id exists'] });
    expect(await run(['clients', 'create', '--name', 'x', '--scopes', 'a', '--auth-method', 'none', '-c', file])).toMatchObject({ code: 1, stderr: ['rampart: --auth-method must be one of client_secret_basic, client_secret_post, private_key_jwt'] });
    expect(await run(['clients', 'delete', 'billing', '-c', file])).toMatchObject({ code: 0, stdout: ['deleted client billing; its tokens are refused'] });
    expect(await run(['clients', 'delete', 'billing', '-c', file])).toMatchObject({ code: 1, stderr: ["rampart: no client 'billing'"] });
  });

  it('refuses a config without an identity section', async () => {
    const file = writeConfig(['routes: []']);
    const result = await run(['keys', 'list', '-c', file]);
    expect(result.code).toBe(1);
    expect(result.stderr).toEqual([`rampart: ${file} has no enabled identity section`]);
  });
});

describe('rampart start', () => {
  it('exits 1 with one line when the config file does not exist', async () => {
    const file = join(dir, 'missing.yaml');
    const { code, stdout, stderr } = await runCli(['start', '-c', file]);
    expect(code).toBe(1);
    expect(stdout).toEqual([]);
    expect(stderr).toEqual([`rampart: cannot read config file '${file}': no such file`]);
  });

  it('exits 1 with one line when the gateway port is already in use', async () => {
    occupied = createServer();
    occupied.listen(0, '127.0.0.1');
    await once(occupied, 'listening');
    const { port } = occupied.address() as AddressInfo;
    const file = writeConfig(validLines(String(port)));
    const { code, stdout, stderr } = await runCli(['start', '-c', file]);
    expect(code).toBe(1);
    expect(stdout).toEqual([]);
    expect(stderr).toEqual([`rampart: cannot listen on 127.0.0.1:${port} (gateway): address already in use`]);
  });
});

describe('rampart --version and --help', () => {
  it('--version prints the package version', async () => {
    const { code, stdout, stderr } = await runCli(['--version']);
    expect(code).toBe(0);
    expect(stderr).toEqual([]);
    expect(stdout).toEqual([VERSION]);
  });

  it('--help lists the commands and examples', async () => {
    const { code, stdout, stderr } = await runCli(['--help']);
    expect(code).toBe(0);
    expect(stderr).toEqual([]);
    const text = stdout.join('\n');
    expect(text).toContain('Usage: rampart');
    expect(text).toMatch(/^ {2}start \[options\]/m);
    expect(text).toMatch(/^ {2}validate \[options\]/m);
    expect(stdout).toContain('Examples:');
    expect(text).toContain('rampart start -c rampart.yaml');
  });

  it('start --help describes its options', async () => {
    const { code, stdout, stderr } = await runCli(['start', '--help']);
    expect(code).toBe(0);
    expect(stderr).toEqual([]);
    const text = stdout.join('\n');
    expect(text).toContain('Usage: rampart start [options]');
    expect(text).toContain('-c, --config <file>');
    expect(text).toContain('rampart start -c examples/quickstart/rampart.yaml');
  });
});
