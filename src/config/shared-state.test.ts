import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { loadConfigText } from './load.js';
import { formatIssue } from './errors.js';
import { sharedStateIssues } from './shared-state.js';
import { defaultWorkers } from '../gateway/workers.js';

/** What `--workers > 1` refuses: state kept in process memory, each issue at its setting. */

const REDIS = { url: 'redis://127.0.0.1:6379' };
const upstreams = { app: { targets: [{ url: 'http://127.0.0.1:1' }] } };
const route = (policies: Record<string, unknown> = {}) => ({ name: 'r', match: { path: '/r' }, upstream: 'app', public: true, allowInsecure: true, policies });

function issues(config: Record<string, unknown>): string[] {
  const loaded = loadConfigText(stringify({ upstreams, ...config }), '/etc/rampart/rampart.yaml', '/etc/rampart', {});
  return sharedStateIssues(loaded).map(formatIssue);
}

describe('sharedStateIssues', () => {
  it('nothing to refuse: no limits in memory, or everything in Redis', () => {
    expect(issues({ defaults: { 'ip-rate-limit': false }, routes: [route()] })).toEqual([]);
    expect(issues({ redis: REDIS, routes: [route({ 'rate-limit': { limits: [{ limit: 10, window: '1m' }] }, jwt: { secret: 'x'.repeat(32), algorithms: ['HS256'], issuer: 'i', audience: ['a'] } })] })).toEqual([]);
  });

  it('the default per-IP limit without redis, once, at the top of the file', () => {
    expect(issues({ routes: [route(), { ...route(), name: 's', match: { path: '/s' } }] })).toEqual([
      '/etc/rampart/rampart.yaml:1:1: the per-IP rate limit (ip-rate-limit, on by default) counts in process memory (no top-level `redis`): each worker would count its own; configure `redis` or turn it off for --workers > 1',
    ]);
  });

  it('a memory store chosen explicitly is refused even with redis, at its line', () => {
    const found = issues({ redis: REDIS, defaults: { 'ip-rate-limit': { store: 'memory' } }, routes: [route({ 'rate-limit': { limits: [{ limit: 10, window: '1m' }, { limit: 100, window: '1h', store: 'memory' }] } })] });
    expect(found).toHaveLength(2);
    expect(found[0]).toMatch(/^\/etc\/rampart\/rampart\.yaml:\d+:\d+: defaults\.ip-rate-limit\.store: the per-IP rate limit .* uses the memory store/);
    expect(found[1]).toMatch(/^\/etc\/rampart\/rampart\.yaml:\d+:\d+: routes\[0\]\.policies\.rate-limit\.limits\[1\]\.store: this rate limit uses the memory store/);
  });

  it('revocations in memory: jwt and api-key with revocation: memory, or without redis', () => {
    const jwt = { secret: 'x'.repeat(32), algorithms: ['HS256'], issuer: 'i', audience: ['a'], revocation: 'memory' };
    const found = issues({ redis: REDIS, routes: [route({ jwt })] });
    expect(found).toHaveLength(1);
    expect(found[0]).toMatch(/routes\[0\]\.policies\.jwt\.revocation: revocations are kept in process memory/);
    const { revocation: _r, ...auto } = jwt;
    expect(issues({ defaults: { 'ip-rate-limit': false }, routes: [route({ jwt: auto })] })).toEqual([expect.stringMatching(/jwt\.revocation: revocations are kept in process memory/)]);
  });

  it('the identity service needs redis, and PostgreSQL rather than SQLite', () => {
    const identity = { issuer: 'https://localhost', masterKey: randomBytes(32).toString('base64') };
    const onSqlite = issues({ mode: 'development', redis: REDIS, identity, routes: [] });
    expect(onSqlite).toEqual([expect.stringMatching(/storage\.url: the identity service on SQLite is for one process: with --workers > 1 it needs PostgreSQL/)]);
    const noRedis = issues({ mode: 'development', defaults: { 'ip-rate-limit': false }, storage: { url: 'postgres://rampart@db/rampart' }, identity, routes: [] });
    expect(noRedis).toEqual([expect.stringMatching(/identity: the identity service keeps its revocations and per-IP login limits in process memory/)]);
    expect(issues({ mode: 'development', redis: REDIS, storage: { url: 'postgres://rampart@db/rampart' }, identity, routes: [] })).toEqual([]);
  });
});

describe('defaultWorkers', () => {
  const load = (config: Record<string, unknown>) => loadConfigText(stringify({ upstreams, routes: [route()], ...config }), '/etc/rampart/rampart.yaml', '/etc/rampart', {});

  it('one per core with redis and nothing in memory; else 1', () => {
    expect(defaultWorkers(load({ redis: REDIS })).workers).toBe(availableParallelism());
    expect(defaultWorkers(load({}))).toEqual({ workers: 1, reason: 'no shared store (redis) configured' });
    const memory = defaultWorkers(load({ redis: REDIS, defaults: { 'ip-rate-limit': { store: 'memory' } } }));
    expect(memory.workers).toBe(1);
    expect(memory.reason).toContain('defaults.ip-rate-limit.store');
  });
});
