#!/usr/bin/env node
import { readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError } from 'commander';
import { loadConfigFile, type LoadedConfig } from '../config/load.js';
import { AdminApi, apiManagement, configExists, offlineManagement, resolveTarget, type Management } from './management.js';
import { ConfigError, ConfigFileError, formatIssue } from '../config/errors.js';
import { buildPipeline, redisSettings } from '../gateway/pipeline.js';
import { DURATION_PATTERN, parseDuration } from '../config/units.js';
import { GatewayRuntime, ListenError } from '../gateway/runtime.js';
import { loadTls } from '../gateway/tls.js';
import { loadMasterKey } from '../identity/master-key.js';
import { checkConfig, defaultWorkers, isWorkerProcess, runPrimary, runWorker, SharedStateError } from '../gateway/workers.js';
import { createEvents } from '../observability/events.js';
import { createLogger } from '../observability/logger.js';
import { describePipeline } from './describe.js';
import { initFromOpenApi } from './init.js';
import { openStorage } from '../storage/database.js';
import { migrateToLatest } from '../storage/migrate.js';
import { IdentityStartError, startIdentity, type IdentityRuntime } from '../identity/index.js';
import { Stores } from '../stores/stores.js';
import { CLIENT_AUTH_METHODS, type ClientAuthMethod } from '../identity/clients.js';
import { rotateMasterKey } from '../identity/master-rotation.js';
import type { JSONWebKeySet } from 'jose';
import { RampartError } from '../errors/problem.js';
import { scanCommand, type ScanCliOptions } from '../scanner/cli.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

export interface Io {
  out: (line: string) => void;
  err: (line: string) => void;
}

const stdio: Io = { out: (l) => process.stdout.write(l + '\n'), err: (l) => process.stderr.write(l + '\n') };

/** Runs the CLI; resolves to the exit code (for `start`, once the gateway is up: it keeps running). */
export async function main(argv: readonly string[], io: Io = stdio): Promise<number> {
  let code = 0;
  const program = new Command()
    .name('rampart')
    .description('A security-first API gateway for REST APIs, configured from one YAML file.')
    .version(pkg.version, '-v, --version', 'print the version')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s.trimEnd()), writeErr: (s) => io.err(s.trimEnd()) })
    .addHelpText(
      'after',
      `
Examples:
  rampart start -c rampart.yaml        run the gateway
  rampart init --from-openapi api.yaml  write a starter rampart.yaml from an OpenAPI document
  rampart validate -c rampart.yaml     check a config and show its routes and policies
  rampart migrate -c rampart.yaml      bring the database to the latest version
  rampart users create --admin a@b.c --offline   the first admin, before any gateway runs (one-time password)
  rampart keys list                    show the signing keys, through the running gateway's admin API
                                       (RAMPART_ADMIN_TOKEN or --token-file; --offline: the database)
  rampart apikeys create --user a@b.c  make an API key for a user (printed once)
  rampart clients create --name … --scopes …   register an OAuth client (client credentials)
  rampart scan https://api.example.com --format sarif --out reports   black-box security tests of any API
  kill -HUP <pid>                      reload the config without dropping requests`,
    );

  program
    .command('start')
    .description('run the gateway (SIGHUP reloads the config, SIGTERM/SIGINT drain and stop)')
    .option('-c, --config <file>', 'config file', 'rampart.yaml')
    .option('-w, --workers <n>', 'worker processes sharing the listeners (default: one per core when the config keeps its state in redis, else 1)')
    .addHelpText('after', '\nExamples:\n  rampart start -c examples/quickstart/rampart.yaml\n  rampart start -c rampart.yaml --workers 4   (needs redis for rate limits and revocations)')
    .action(async (opts: { config: string; workers?: string }) => {
      code = await start(opts.config, opts.workers, io);
    });

  program
    .command('validate')
    .description('check a config: print every error with file:line:column, or a summary of routes and policies')
    .option('-c, --config <file>', 'config file', 'rampart.yaml')
    .addHelpText('after', '\nExample:\n  rampart validate -c rampart.yaml && echo ok')
    .action((opts: { config: string }) => {
      code = validate(opts.config, io);
    });

  program
    .command('init')
    .description('write a starter rampart.yaml')
    .requiredOption('--from-openapi <spec>', 'the API\'s OpenAPI 3.0/3.1 document (YAML or JSON): one route per path, its security schemes, validation and the response allowlist')
    .option('-o, --output <file>', 'config file to write', 'rampart.yaml')
    .option('--upstream <url>', 'the API\'s base URL (default: the document\'s first server)')
    .option('--force', 'overwrite the output file if it exists')
    .addHelpText('after', '\nExample:\n  rampart init --from-openapi openapi.yaml -o rampart.yaml && rampart validate -c rampart.yaml')
    .action((opts: { fromOpenapi: string; output: string; upstream?: string; force?: boolean }) => {
      code = init(opts, io);
    });

  program
    .command('migrate')
    .description('bring the database (storage.url) to the latest version')
    .option('-c, --config <file>', 'config file', 'rampart.yaml')
    .action(async (opts: { config: string }) => {
      code = await migrate(opts.config, io);
    });

  program
    .command('scan')
    .argument('<base-url>', 'the API to test (http:// or https://)')
    .description('black-box security tests of an API (any API, not only one behind Rampart); safe requests unless --destructive')
    .option('--openapi <file|url>', 'test every operation of this OpenAPI 3.0/3.1 document (else: a bounded crawl)')
    .option('--auth <header>', "credentials of caller A, a header: 'Authorization: Bearer …', 'X-API-Key: …'")
    .option('--auth-b <header>', 'credentials of caller B, a different user (authorization checks)')
    .option('--login <path>', 'log in with a JSON POST to this path (with --user and --password) to get caller A')
    .option('--user <name>', 'user name or e-mail for --login')
    .option('--password <password>', 'password for --login (or RAMPART_SCAN_PASSWORD)')
    .option('--user-b <name>', 'caller B for --login')
    .option('--password-b <password>', 'password of --user-b (or RAMPART_SCAN_PASSWORD_B)')
    .option('--http-url <url>', "the API's plain-HTTP address (e.g. http://localhost:8080): the transport check asks it to redirect to HTTPS (default: port 80 of an https:// target on 443)")
    .option('--safe', 'only requests that cannot change state or lock accounts (the default)')
    .option('--destructive', 'also send writes and lockout-triggering bursts (test systems only)')
    .option('--format <formats>', 'comma-separated: terminal, json, sarif, html', 'terminal')
    .option('--out <dir>', 'write json/sarif/html reports into this directory (rampart-scan.json, .sarif, .html)')
    .option('--fail-on <severity>', 'exit 1 when a finding is at or above: info, low, medium, high, critical', 'high')
    .option('--checks <ids>', 'run only these checks (comma-separated ids; see docs/scanner.md)')
    .option('--skip-checks <ids>', 'run every check but these (comma-separated ids)')
    .option('--baseline <file>', 'accepted findings: a previous rampart-scan.json or a list of fingerprints; reported, marked, not counted for --fail-on')
    .option('--rate <n>', 'requests per second, at most', '10')
    .option('--max-requests <n>', 'requests in total, at most (the budget)', '500')
    .option('--timeout <seconds>', 'per request', '10')
    .option('--ca <file>', 'PEM certificate to trust for an https target')
    .option('--insecure', 'do not verify the target\'s certificate')
    .option('--verbose', 'log every request to stderr')
    .addHelpText('after', '\nExit codes: 0 nothing at or above --fail-on (baseline-accepted findings aside), 1 there is, 2 error (bad URL or baseline, unreachable target).\nExample:\n  rampart scan https://api.example.com --format terminal,sarif --out reports --fail-on medium --baseline rampart-baseline.json')
    .action(async (target: string, opts: ScanCliOptions) => {
      const tty = io === stdio;
      code = await scanCommand(target, opts, {
        ...io,
        color: tty && process.stdout.isTTY === true && process.env.NO_COLOR === undefined,
        // The progress bar only on a terminal: redrawn in place, it would be noise in a log file or CI output.
        progress: tty && process.stderr.isTTY === true,
        write: (text) => process.stderr.write(text),
      });
    });

  const users = program.command('users').description('manage the identity service\'s users (through the admin API of a running gateway, or --offline)');
  managed(
    users
      .command('create')
      .description('create an admin account and print its one-time password (the first login must change it)')
      .requiredOption('--admin <email>', 'e-mail address of the new admin')
      .addHelpText('after', '\nExamples:\n  rampart users create --admin admin@example.com --offline -c rampart.yaml   the first admin, before any gateway runs\n  RAMPART_ADMIN_TOKEN=… rampart users create --admin ops@example.com -c rampart.yaml'),
  ).action(async (opts: ManageOptions & { admin: string }) => {
    code = await withManagement(opts, io, async (m) => {
      const created = await m.createAdmin(opts.admin);
      io.out(`created admin ${created.id} (${created.email})`);
      io.out(`one-time password: ${created.oneTimePassword}`);
      io.out('It is shown once. Logging in with it answers password_change_required with a token that can only set a new password.');
    });
  });

  const keys = program.command('keys').description('manage the identity service\'s signing keys (through the admin API of a running gateway, or --offline)');
  managed(keys.command('list').description('show the published signing keys')).action(async (opts: ManageOptions) => {
    code = await withManagement(opts, io, async (m) => {
      for (const k of await m.listSigningKeys()) io.out(`${k.state.padEnd(8)} ${k.kid}  ${k.alg}  signs from ${k.activeFrom}`);
    });
  });
  managed(keys.command('rotate').description('let the next key sign (once it has been published for one JWKS cache lifetime) and publish a new next key')).action(async (opts: ManageOptions) => {
    code = await withManagement(opts, io, async (m) => {
      const rotated = await m.rotateSigningKey();
      io.out(`key ${rotated.kid} signs from ${rotated.activeFrom}; running gateways pick it up at their next key refresh (identity.keys.refresh)`);
    });
  });
  managed(
    keys
      .command('revoke')
      .argument('<kid>', 'the key id (RFC 7638 thumbprint)')
      .description('emergency: withdraw a key from JWKS; every token it signed is refused'),
  ).action(async (kid: string, opts: ManageOptions) => {
    code = await withManagement(opts, io, async (m) => {
      if (!(await m.revokeSigningKey(kid))) throw new Error(`no published key '${kid}'`);
      io.out(`revoked ${kid}; running gateways refuse its tokens from their next key refresh (identity.keys.refresh)`);
    });
  });

  keys
    .command('rotate-master')
    .description('re-encrypt everything under identity.masterKey that was under a key in identity.previousMasterKeys (signing keys, TOTP secrets, server keys); always on the database directly')
    .option('-c, --config <file>', 'config file', 'rampart.yaml')
    .option('--offline', 'accepted for symmetry: this command always works on the database directly')
    .addHelpText(
      'after',
      '\nSteps:\n  1. put the new key in identity.masterKey and the old one in identity.previousMasterKeys, on every node (restart them)\n  2. rampart keys rotate-master -c rampart.yaml\n  3. remove identity.previousMasterKeys (restart again)\n\nThere is no admin API for it: it needs the master keys from the config on disk, and runs once for the whole cluster.',
    )
    .action(async (opts: { config: string }) => {
      code = await withIdentity(opts.config, io, async (identity) => {
        const done = await rotateMasterKey(identity.storage.db, identity.master);
        io.out(`re-encrypted under master key ${identity.master.id}: ${done.signingKeys} signing keys, ${done.totpSecrets} TOTP secrets, ${done.serverKeys} server keys`);
        io.out(`new API keys and client secrets use pepper version ${done.pepperVersion}; existing ones keep working`);
        io.out('Now remove identity.previousMasterKeys from the config of every node.');
      });
    });

  const apikeys = program.command('apikeys').description('manage the identity service\'s API keys (through the admin API of a running gateway, or --offline)');
  managed(
    apikeys
      .command('create')
      .description('make an API key for a user and print it once (it acts as the user, with at most their scopes)')
      .requiredOption('--user <email>', 'the owner of the key')
      .option('--name <name>', 'what the key is for (shown in lists)', 'made with the CLI')
      .option('--scopes <scopes>', 'comma-separated scopes (default: every scope the owner has)')
      .option('--expires <duration>', 'lifetime such as 30d (default: identity.apiKeys.defaultTtl)')
      .addHelpText('after', '\nExample:\n  rampart apikeys create --user ci@example.com --scopes notes:read --expires 30d -c rampart.yaml'),
  ).action(async (opts: ManageOptions & { user: string; name: string; scopes?: string; expires?: string }) => {
    code = await withManagement(opts, io, async (m) => {
      if (opts.expires !== undefined) parseCliDuration(opts.expires);
      const owner = await m.userIdByEmail(opts.user);
      if (owner === undefined) throw new Error(`no user '${opts.user}'`);
      const scopes = opts.scopes?.split(',').map((x) => x.trim()).filter((x) => x !== '');
      const created = await m.createApiKey({ ownerId: owner, name: opts.name, scopes, expires: opts.expires });
      io.out(`created API key ${created.key.id} for ${opts.user} (scopes: ${created.key.scopes.join(' ') || 'none'}; expires ${created.key.expiresAt})`);
      io.out(`key: ${created.secret}`);
      io.out('It is shown once; only its hash is stored. Send it in the X-API-Key header.');
    });
  });
  managed(
    apikeys
      .command('list')
      .description('list API keys (all of them, or one user\'s): id, prefix, status, scopes, expiry, last use')
      .option('--user <email>', 'only this user\'s keys'),
  ).action(async (opts: ManageOptions & { user?: string }) => {
    code = await withManagement(opts, io, async (m) => {
      let userId: string | undefined;
      if (opts.user !== undefined) {
        userId = await m.userIdByEmail(opts.user);
        if (userId === undefined) throw new Error(`no user '${opts.user}'`);
      }
      let cursor: string | undefined;
      do {
        const page = await m.listApiKeys({ userId, cursor });
        for (const k of page.items) io.out(`${k.id}  ${k.prefix}…  ${k.status.padEnd(7)}  user ${k.userId}  scopes ${k.scopes.join(' ') || '-'}  expires ${k.expiresAt}  last used ${k.lastUsedAt ?? 'never'}`);
        cursor = page.nextCursor ?? undefined;
      } while (cursor !== undefined);
    });
  });
  managed(
    apikeys
      .command('revoke')
      .argument('<id>', 'the key id (from apikeys list)')
      .description('revoke an API key: the gateway whose admin API is used, and every gateway sharing its Redis, refuse it on the next request'),
  ).action(async (id: string, opts: ManageOptions) => {
    code = await withManagement(opts, io, async (m, loaded) => {
      const key = await m.getApiKey(id);
      if (key === undefined) throw new Error(`no API key '${id}'`);
      if (key.revokedAt === null) await m.revokeApiKey(id);
      io.out(`revoked ${id} (${key.prefix}…)`);
      if (m.kind === 'offline' && loaded !== undefined && loaded.config.redis === undefined) {
        io.err(`warning: ${loaded.file} has no redis, so the revocation reached the database only: gateways running now refuse the key once their cached look-up of it runs out (identity.apiKeys.cacheTtl, ${loaded.config.identity!.apiKeys.cacheTtl}); without --offline, the gateway refuses it on the next request`);
      }
    });
  });

  const clients = program.command('clients').description('manage the identity service\'s OAuth clients (client credentials; through the admin API of a running gateway, or --offline)');
  managed(
    clients
      .command('create')
      .description('register an OAuth client and print its secret once (or give its public keys for private_key_jwt)')
      .requiredOption('--name <name>', 'what the client is')
      .requiredOption('--scopes <scopes>', 'comma-separated scope ceiling: a token never carries a scope outside it')
      .option('--id <id>', 'the client_id (default: generated)')
      .option('--auth-method <method>', 'client_secret_basic, client_secret_post or private_key_jwt', 'client_secret_basic')
      .option('--jwks <file>', 'a JSON Web Key Set of the client\'s public keys (private_key_jwt)')
      .option('--introspection', 'may introspect any token of this server (a resource server)')
      .option('--token-ttl <duration>', 'access-token lifetime, at most 1h')
      .addHelpText('after', '\nExample:\n  rampart clients create --id billing --name "Billing service" --scopes notes:read -c rampart.yaml'),
  ).action(async (opts: ManageOptions & { name: string; scopes: string; id?: string; authMethod: string; jwks?: string; introspection?: boolean; tokenTtl?: string }) => {
    code = await withManagement(opts, io, async (m) => {
      if (!(CLIENT_AUTH_METHODS as readonly string[]).includes(opts.authMethod)) throw new Error(`--auth-method must be one of ${CLIENT_AUTH_METHODS.join(', ')}`);
      if (opts.tokenTtl !== undefined) parseCliDuration(opts.tokenTtl);
      let jwks;
      if (opts.jwks !== undefined) {
        try {
          jwks = JSON.parse(readFileSync(opts.jwks, 'utf8')) as JSONWebKeySet;
        } catch (error) {
          throw new Error(`cannot read the JWK Set '${opts.jwks}': ${(error as Error).message}`);
        }
      }
      const created = await m.createClient({
        id: opts.id,
        name: opts.name,
        scopes: opts.scopes.split(',').map((x) => x.trim()).filter((x) => x !== ''),
        authMethod: opts.authMethod as ClientAuthMethod,
        jwks,
        introspection: opts.introspection === true,
        tokenTtl: opts.tokenTtl,
      });
      io.out(`created client ${created.client.id} (${created.client.authMethod}; scopes: ${created.client.scopes.join(' ') || 'none'})`);
      if (created.secret !== undefined) {
        io.out(`client_secret: ${created.secret}`);
        io.out('It is shown once; only its hash is stored.');
      }
    });
  });
  managed(clients.command('list').description('list the OAuth clients: id, status, method, scopes, secrets')).action(async (opts: ManageOptions) => {
    code = await withManagement(opts, io, async (m) => {
      let after: string | undefined;
      do {
        const page = await m.listClients(after);
        for (const c of page.items) {
          const secrets = c.secrets.filter((x) => x.status === 'active' || x.status === 'expiring').map((x) => `${x.prefix}… ${x.status}${x.expiresAt !== null ? ` until ${x.expiresAt}` : ''}`);
          io.out(`${c.id}  ${c.status.padEnd(8)}  ${c.authMethod}  scopes ${c.scopes.join(' ') || '-'}${secrets.length > 0 ? `  secrets ${secrets.join(', ')}` : ''}`);
        }
        after = page.nextCursor ?? undefined;
      } while (after !== undefined);
    });
  });
  managed(
    clients
      .command('rotate-secret')
      .argument('<id>', 'the client_id')
      .description('print a new secret once; the old ones keep working for the overlap')
      .option('--overlap <duration>', 'how long the old secrets keep working (default identity.clients.secretOverlap; 0s ends them now)'),
  ).action(async (id: string, opts: ManageOptions & { overlap?: string }) => {
    code = await withManagement(opts, io, async (m) => {
      if (opts.overlap !== undefined) parseCliDuration(opts.overlap);
      const rotated = await m.rotateClientSecret(id, opts.overlap);
      if (rotated === undefined) throw new Error(`no client '${id}'`);
      io.out(`client_secret: ${rotated.secret}`);
      io.out(`The previous secrets work until ${rotated.previousExpireAt}. This one is shown once.`);
    });
  });
  managed(
    clients
      .command('delete')
      .argument('<id>', 'the client_id')
      .description('delete a client: its secrets with it, and every token it holds refused'),
  ).action(async (id: string, opts: ManageOptions) => {
    code = await withManagement(opts, io, async (m, loaded) => {
      if (!(await m.deleteClient(id))) throw new Error(`no client '${id}'`);
      io.out(`deleted client ${id}; its tokens are refused`);
      if (m.kind === 'offline' && loaded !== undefined && loaded.config.redis === undefined) {
        io.err(`warning: ${loaded.file} has no redis: gateways running now refuse the client's tokens from their next sync with the database (identity.keys.refresh, ${loaded.config.identity!.keys.refresh})`);
      }
    });
  });

  try {
    await program.parseAsync(keyIdsAsOperands(argv), { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode;
    throw error;
  }
  return code;
}

/**
 * A key id is an RFC 7638 thumbprint: 43 base64url characters, so one in 64 starts with '-' and
 * the parser would take it for an option (regression cli-kid-starting-with-dash). Such an id
 * given to `keys revoke` is moved behind '--'; no option of the CLI looks like one.
 */
const KID_WITH_DASH = /^-[A-Za-z0-9_-]{42}$/;
function keyIdsAsOperands(argv: readonly string[]): string[] {
  if (argv[0] !== 'keys' || argv[1] !== 'revoke' || argv.includes('--')) return [...argv];
  const kids = argv.filter((a) => KID_WITH_DASH.test(a));
  return kids.length === 0 ? [...argv] : [...argv.filter((a) => !KID_WITH_DASH.test(a)), '--', ...kids];
}

function init(opts: { fromOpenapi: string; output: string; upstream?: string; force?: boolean }, io: Io): number {
  if (opts.upstream !== undefined && !/^https?:\/\/[^/?#\s]+(\/[^?#\s]*)?$/.test(opts.upstream)) {
    io.err(`rampart: --upstream must be an http:// or https:// URL, not '${opts.upstream}'`);
    return 2;
  }
  let result;
  try {
    result = initFromOpenApi(opts.fromOpenapi, { output: opts.output, upstream: opts.upstream });
  } catch (error) {
    return reportStartupError(error, io);
  }
  try {
    writeFileSync(opts.output, result.yaml, { flag: opts.force === true ? 'w' : 'wx', mode: 0o600 });
  } catch (error) {
    const exists = (error as NodeJS.ErrnoException).code === 'EEXIST';
    io.err(`rampart: cannot write ${opts.output}: ${exists ? 'it exists (use --force to overwrite it)' : (error as Error).message}`);
    return 1;
  }
  io.out(`wrote ${opts.output}: ${result.routes} route${result.routes === 1 ? '' : 's'} for ${result.operations} operation${result.operations === 1 ? '' : 's'}, validated against ${opts.fromOpenapi} with the response allowlist on`);
  io.out('assumed:');
  for (const assumption of result.assumptions) io.out(`  - ${assumption}`);
  // The written config is checked as `rampart validate` would: a document init cannot map
  // cleanly must not leave a config that fails at the first start without saying so.
  try {
    const logger = createLogger({ level: 'silent', destination: 'stderr' });
    void buildPipeline(loadConfigFile(opts.output), { logger, events: createEvents(logger) }).close();
  } catch (error) {
    io.err(`rampart: the written config does not validate yet; fix it before starting:`);
    return reportStartupError(error, io) || 1;
  }
  io.out(`next: rampart validate -c ${opts.output}`);
  return 0;
}

function validate(file: string, io: Io): number {
  try {
    const loaded = loadConfigFile(file);
    const logger = createLogger({ level: 'silent', destination: 'stderr' });
    const pipeline = buildPipeline(loaded, { logger, events: createEvents(logger) });
    for (const line of describePipeline(pipeline)) io.out(line);
    for (const warning of loaded.warnings) io.err(`warning: ${formatIssue(warning)}`);
    void pipeline.close();
    return 0;
  } catch (error) {
    return reportStartupError(error, io);
  }
}

async function migrate(file: string, io: Io): Promise<number> {
  let loaded;
  try {
    loaded = loadConfigFile(file);
  } catch (error) {
    return reportStartupError(error, io);
  }
  const storage = openStorage(loaded.config.storage.url, loaded.dir);
  try {
    const { applied } = await migrateToLatest(storage.db);
    io.out(applied.length === 0 ? `${storage.dialect}: up to date` : `${storage.dialect}: applied ${applied.join(', ')}`);
    return 0;
  } catch (error) {
    io.err(`rampart: ${(error as Error).message}`);
    return 1;
  } finally {
    await storage.close();
  }
}


/** A duration option such as `30d`; a bad one is a one-line error. */
function parseCliDuration(text: string): number {
  if (!new RegExp(DURATION_PATTERN).test(text)) throw new Error(`'${text}' is not a duration (e.g. 90d, 12h, 30m)`);
  return parseDuration(text);
}

/** The options every management command takes: where the config is, and which backend to use. */
interface ManageOptions {
  config: string;
  offline?: boolean;
  adminUrl?: string;
  tokenFile?: string;
  ca?: string;
}

function managed(command: Command): Command {
  return command
    .option('-c, --config <file>', 'config file', 'rampart.yaml')
    .option('--offline', 'work on the database directly instead of through the admin API of a running gateway (the bootstrap path, before any gateway runs)')
    .option('--admin-url <url>', 'the admin API (default: RAMPART_ADMIN_URL, else the config\'s admin.listen)')
    .option('--token-file <file>', 'a file holding the admin token (default: the RAMPART_ADMIN_TOKEN environment variable)')
    .option('--ca <file>', 'the certificate to trust for an https admin API (default with server.tls: auto: the development certificate in dataDir)');
}

/**
 * Runs a management command: through the admin API of a running gateway (whose identity service
 * and revocation store make the change, so it holds on the next request), or with `--offline`
 * on the database directly. A gateway that does not answer is an error, never a silent switch to
 * the database: the operator chooses `--offline`.
 */
async function withManagement(opts: ManageOptions, io: Io, work: (m: Management, loaded: LoadedConfig | undefined) => Promise<void>): Promise<number> {
  if (opts.offline === true) {
    if (opts.adminUrl !== undefined) {
      io.err('rampart: --offline and --admin-url exclude each other');
      return 2;
    }
    return withIdentity(opts.config, io, (identity, loaded) => work(offlineManagement(identity, parseCliDuration), loaded));
  }
  // The config gives the address and certificate; with an address given, it is read only if it exists.
  const urlGiven = opts.adminUrl !== undefined || (process.env.RAMPART_ADMIN_URL ?? '') !== '';
  let loaded: LoadedConfig | undefined;
  if (!urlGiven || configExists(opts.config)) {
    try {
      loaded = loadConfigFile(opts.config);
    } catch (error) {
      return reportStartupError(error, io);
    }
    if (loaded.config.identity?.enabled !== true) {
      io.err(`rampart: ${loaded.file} has no enabled identity section`);
      return 1;
    }
  }
  let api: AdminApi | undefined;
  try {
    api = new AdminApi(resolveTarget(opts, loaded, process.env), `rampart start -c ${opts.config}`);
    await work(apiManagement(api), loaded);
    return 0;
  } catch (error) {
    io.err(`rampart: ${(error as Error).message}`);
    return 1;
  } finally {
    await api?.close();
  }
}

/** Runs a command against the identity service of a config (its database and keys), then closes it. */
async function withIdentity(file: string, io: Io, work: (identity: IdentityRuntime, loaded: LoadedConfig) => Promise<void>): Promise<number> {
  let loaded;
  try {
    loaded = loadConfigFile(file);
  } catch (error) {
    return reportStartupError(error, io);
  }
  if (loaded.config.identity?.enabled !== true) {
    io.err(`rampart: ${loaded.file} has no enabled identity section`);
    return 1;
  }
  // Errors only: the gateway's start-up warnings (development master key, …) are its own to give.
  const logger = createLogger({ level: 'error', destination: 'stderr' });
  // With Redis, revocations made here reach every running gateway at once (as the API's do).
  const redis = loaded.config.redis === undefined ? undefined : redisSettings(loaded.config.redis);
  const stores = new Stores(logger, { connect: redis !== undefined });
  let identity: IdentityRuntime | undefined;
  try {
    if (redis !== undefined) {
      stores.revocation(redis);
      if (!(await stores.ready(redis.connectTimeoutMs))) throw new Error(`Redis (${loaded.config.redis!.url.replace(/\/\/[^@]*@/, '//***@')}) does not answer: revocations could not reach running gateways`);
    }
    identity = await startIdentity(loaded, { logger, events: createEvents(logger), stores, redis });
    await work(identity, loaded);
    return 0;
  } catch (error) {
    io.err(`rampart: ${error instanceof RampartError ? (error.detail ?? error.message) : (error as Error).message}`);
    return 1;
  } finally {
    await identity?.close();
    await stores.close();
  }
}

async function start(file: string, workersOption: string | undefined, io: Io): Promise<number> {
  if (isWorkerProcess()) {
    try {
      await runWorker({ configFile: file }, (options) => GatewayRuntime.start(options));
      return 0;
    } catch (error) {
      // Nothing else would end a worker (the IPC channel keeps it alive): the primary restarts it.
      process.exit(reportStartupError(error, io));
    }
  }
  let workers: number | undefined;
  if (workersOption !== undefined) {
    workers = /^[1-9][0-9]{0,3}$/.test(workersOption) ? Number(workersOption) : NaN;
    if (!(workers <= 1024)) {
      io.err(`rampart: --workers must be a whole number from 1 to 1024, not '${workersOption}'`);
      return 2;
    }
  }
  if (workers !== 1) {
    let loaded: LoadedConfig;
    try {
      loaded = loadConfigFile(file);
      workers ??= defaultWorkers(loaded).workers;
      if (workers > 1) {
        loaded = checkConfig(file, workers);
        // Certificate files are checked here, and a development certificate (`tls: auto`) is made
        // once, before the workers race to make their own.
        await loadTls(loaded);
        // The same for a development master key (identity without `masterKey`): made once here,
        // or two workers would each make one and keep different keys.
        const identity = loaded.config.identity;
        if (identity?.enabled === true && identity.masterKey === undefined && loaded.config.mode === 'development') {
          try {
            loadMasterKey({ configured: undefined, mode: 'development', dataDir: resolve(loaded.dir, loaded.config.dataDir) });
          } catch {
            // The workers' own start reports it (the start then fails).
          }
        }
      }
    } catch (error) {
      if (error instanceof SharedStateError) {
        for (const issue of error.issues) io.err(formatIssue(issue));
        io.err(`rampart: --workers ${error.workers} refused: ${error.issues.length} setting${error.issues.length === 1 ? ' keeps' : 's keep'} state in process memory that every worker must share (configure redis, and PostgreSQL for the identity service, or run --workers 1)`);
        return 1;
      }
      return reportStartupError(error, io);
    }
    if (workers > 1) return runPrimary(file, loaded, workers);
  }
  // One process, no cluster: exactly the gateway as it always ran.
  let runtime: GatewayRuntime;
  try {
    runtime = await GatewayRuntime.start({ configFile: file });
  } catch (error) {
    return reportStartupError(error, io);
  }
  process.on('SIGHUP', () => {
    // After an external logrotate moved the log file away, and to pick up config changes.
    runtime.reopenLogs();
    void runtime.reload();
  });
  const stop = (signal: string) => {
    void runtime.shutdown(signal).then(
      () => process.exit(0),
      (error: unknown) => {
        io.err(`rampart: shutdown failed: ${(error as Error).message}`);
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  return 0;
}

function reportStartupError(error: unknown, io: Io): number {
  if (error instanceof ConfigError) {
    for (const issue of error.issues) io.err(formatIssue(issue));
    io.err(`rampart: ${error.issues.length} error${error.issues.length === 1 ? '' : 's'} in the config`);
    return 1;
  }
  if (error instanceof ConfigFileError || error instanceof ListenError || error instanceof IdentityStartError) {
    io.err(`rampart: ${error.message}`);
    return 1;
  }
  throw error;
}

function isMain(): boolean {
  if (process.argv[1] === undefined) return false;
  try {
    return realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) {
  // `rampart validate | head`: the reader left; that is not an error worth a stack trace.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw error;
  });
  main(process.argv.slice(2)).then(
    (code) => {
      if (code !== 0) process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`rampart: unexpected error: ${(error as Error).stack ?? String(error)}\n`);
      process.exitCode = 70;
    },
  );
}
