import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { PROBLEM_CONTENT_TYPE, RampartError, toProblem } from '../errors/problem.js';

/**
 * The console's built files: `dist/console` under the package root. This file is two levels below
 * the root both as `src/admin/console.ts` (tests) and as `dist/admin/console.js` (`npm start`).
 */
export const CONSOLE_DIR = fileURLToPath(new URL('../../dist/console/', import.meta.url));

/**
 * Sent with every console response. No inline script or style anywhere: the build emits files
 * only, and scripts change styles through the CSSOM, which `style-src 'self'` allows.
 */
export const CONSOLE_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
  'cross-origin-opener-policy': 'same-origin',
});

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.json': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
};

/** Vite names built assets `name-<hash>.ext`: those never change and are cached for a year. */
const IMMUTABLE = 'public, max-age=31536000, immutable';
/** index.html names the current assets: always fetched again (no-cache would allow a stale copy offline). */
const NOT_STORED = 'no-store';

interface ConsoleFile {
  body: Buffer;
  type: string;
  etag: string;
  cacheControl: string;
}

export interface ConsoleOptions {
  /** Where the built console is (default: `dist/console` under the package root). */
  dir?: string;
}

/**
 * Serves the built console on the admin app: `index.html` at `/` (the console routes with
 * `#/…`, so no other page path exists), and the files under it (`/assets/…`, the icon) by exact
 * path. Everything is read once, here, into memory: a request never touches the disk, and a path
 * that was not in the build cannot be asked for (no traversal to guard against). Without a build,
 * `/` answers 503 RMP_ADMIN_CONSOLE_NOT_BUILT and the rest of the admin listener works as before.
 */
export function registerConsole(app: FastifyInstance, options: ConsoleOptions = {}): void {
  const dir = options.dir ?? CONSOLE_DIR;
  const files = loadFiles(dir);

  // In a context of its own, so its onSend hook runs after the admin app's (which sets
  // `no-store` on everything) and only on the console's answers.
  void app.register(async (scope) => {
    // The admin app's hook has set `no-store` by now; a built file puts its own policy back.
    const cacheControl = new WeakMap<FastifyRequest, string>();
    scope.addHook('onSend', (request, reply, payload, done) => {
      for (const [name, value] of Object.entries(CONSOLE_HEADERS)) reply.header(name, value);
      const policy = cacheControl.get(request);
      if (policy !== undefined) reply.header('cache-control', policy);
      done(null, payload);
    });
    const send = (request: FastifyRequest, reply: FastifyReply, file: ConsoleFile): FastifyReply => {
      cacheControl.set(request, file.cacheControl);
      reply.header('etag', file.etag);
      if (etagMatches(request.headers['if-none-match'], file.etag)) return reply.code(304).send();
      return reply.type(file.type).send(file.body);
    };

    const index = files?.get('/index.html');
    if (files === undefined || index === undefined) {
      const notBuilt = (request: FastifyRequest, reply: FastifyReply) => {
        const error = new RampartError('RMP_ADMIN_CONSOLE_NOT_BUILT', {
          detail: `The console is not built (${join(dir, 'index.html')} is missing). Run \`npm run build:console\` and restart; the admin API works without it.`,
        });
        return reply.code(503).type(PROBLEM_CONTENT_TYPE).send(JSON.stringify(toProblem(error, request.id, '/')));
      };
      scope.get('/', notBuilt);
      return;
    }

    scope.get('/', (request, reply) => send(request, reply, index));
    for (const [path, file] of files) {
      if (path === '/index.html') continue;
      scope.get(path, (request, reply) => send(request, reply, file));
    }
  });
}

function etagMatches(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  return header.split(',').some((candidate) => {
    const tag = candidate.trim();
    return tag === '*' || tag === etag || tag === `W/${etag}`;
  });
}

/** Every file of the build, by URL path; undefined when the directory does not exist. */
function loadFiles(dir: string): Map<string, ConsoleFile> | undefined {
  if (!existsSync(join(dir, 'index.html'))) return undefined;
  const files = new Map<string, ConsoleFile>();
  const walk = (folder: string) => {
    for (const name of readdirSync(folder).sort()) {
      const full = join(folder, name);
      if (statSync(full).isDirectory()) {
        walk(full);
        continue;
      }
      const type = CONTENT_TYPES[extname(name).toLowerCase()];
      if (type === undefined) continue; // source maps, stray files: not served
      const path = '/' + relative(dir, full).split(sep).join('/');
      const body = readFileSync(full);
      files.set(path, {
        body,
        type,
        etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`,
        cacheControl: path.startsWith('/assets/') ? IMMUTABLE : NOT_STORED,
      });
    }
  };
  walk(dir);
  return files;
}
