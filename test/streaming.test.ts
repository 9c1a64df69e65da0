import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { startUpstream, type TestUpstream } from './helpers/gateway.js';

const SIZE = 100 * 1024 * 1024;
const CHUNK = Buffer.alloc(64 * 1024, 'r');

/** 100 MB produced chunk by chunk: neither the test nor the gateway ever holds it whole. */
function* chunks(): Generator<Buffer> {
  for (let sent = 0; sent < SIZE; sent += CHUNK.length) yield CHUNK;
}

function kib(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)![1]);
}

/**
 * Peak RSS growth of `pid` while `work` runs, in MB. What grows is mostly socket read buffers that
 * are already garbage: V8 collects them once about 32 MB of external memory has piled up, so a
 * streaming gateway peaks at 0–36 MB here (measured), a buffering one at 100 MB or more. The kernel's peak (VmHWM) is reset first
 * (clear_refs 5) so an earlier transfer's peak is not counted; RSS is also sampled, for kernels
 * or users that may not reset it.
 */
async function peakGrowthMb(pid: number, work: () => Promise<void>): Promise<number> {
  let resetPeak = true;
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
  } catch {
    resetPeak = false;
  }
  const before = kib(pid, 'VmRSS');
  let sampled = before;
  const sampler = setInterval(() => (sampled = Math.max(sampled, kib(pid, 'VmRSS'))), 5);
  try {
    await work();
  } finally {
    clearInterval(sampler);
  }
  const peak = resetPeak ? Math.max(kib(pid, 'VmHWM'), sampled) : sampled;
  console.log(`  RSS before ${(before / 1024).toFixed(1)} MB, peak ${(peak / 1024).toFixed(1)} MB (${resetPeak ? 'kernel peak' : 'sampled'})`);
  return (peak - before) / 1024;
}

let child: ChildProcess;
let upstream: TestUpstream;
let base: string;

beforeAll(async () => {
  upstream = await startUpstream(
    (req, res) => {
      if (req.url === '/download') {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(SIZE) });
        void pipeline(Readable.from(chunks()), res);
        return;
      }
      if (req.url === '/upload') {
        const hash = createHash('sha256');
        let bytes = 0;
        req.on('data', (c: Buffer) => {
          bytes += c.length;
          hash.update(c);
        });
        req.on('end', () => res.end(JSON.stringify({ bytes, sha256: hash.digest('hex') })));
        return;
      }
      req.resume();
      req.on('end', () => res.end('ok'));
    },
    { readBody: false },
  );
  const dir = mkdtempSync(join(tmpdir(), 'rampart-stream-'));
  const config = join(dir, 'rampart.yaml');
  writeFileSync(
    config,
    stringify({
      server: { listen: { host: '127.0.0.1', port: 0 } },
      admin: { enabled: false },
      log: { destination: 'stdout' },
      upstreams: { big: { targets: [{ url: upstream.url }], timeouts: { body: '60s' } } },
      // 100 MB uploads need a body limit above the 1 MiB default.
      routes: [{ name: 'big', match: { path: '/*' }, upstream: 'big', public: true, allowInsecure: true, policies: { limits: { body: '200MiB' } } }],
    }),
  );
  child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'start', '-c', config], { stdio: ['ignore', 'pipe', 'inherit'] });
  base = await new Promise<string>((resolve, reject) => {
    let buffered = '';
    child.stdout!.on('data', (c: Buffer) => {
      buffered += c.toString();
      const m = /gateway on (http:\/\/127\.0\.0\.1:\d+)/.exec(buffered);
      if (m) resolve(m[1]!);
    });
    child.once('exit', (code) => reject(new Error(`gateway exited with ${code}`)));
  });
  child.stdout!.resume();
  // Warm up: pools, JIT, first allocations, and one large transfer each way so that V8 has sized
  // its heap and external-memory limits for streaming before anything is measured.
  for (let i = 0; i < 20; i++) await transfer('GET', '/warm');
  await transfer('POST', '/upload', chunks());
  await transfer('GET', '/download');
}, 60_000);

afterAll(async () => {
  child?.kill('SIGKILL');
  await upstream?.close();
});

function transfer(method: string, path: string, body?: Iterable<Buffer>): Promise<{ status: number; bytes: number; hash: string; text: string }> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, method, path, agent: false, headers: body ? { 'content-type': 'application/octet-stream', 'content-length': String(SIZE) } : {} }, (res) => {
      const hash = createHash('sha256');
      let bytes = 0;
      let text = '';
      res.on('data', (c: Buffer) => {
        bytes += c.length;
        hash.update(c);
        if (text.length < 1000) text += c.toString();
      });
      res.on('end', () => resolve({ status: res.statusCode!, bytes, hash: hash.digest('hex'), text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (body) pipeline(Readable.from(body), req).catch(reject);
    else req.end();
  });
}

const expectedHash = (() => {
  const h = createHash('sha256');
  for (const c of chunks()) h.update(c);
  return h.digest('hex');
})();

describe('streaming through the gateway', () => {
  it('uploads 100 MB with the gateway RSS growing by less than 50 MB', async () => {
    let res!: Awaited<ReturnType<typeof transfer>>;
    const growthMb = await peakGrowthMb(child.pid!, async () => {
      res = await transfer('POST', '/upload', chunks());
    });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.text)).toEqual({ bytes: SIZE, sha256: expectedHash });
    console.log(`upload: gateway peak RSS growth ${growthMb.toFixed(1)} MB`);
    expect(growthMb).toBeLessThan(50);
  }, 60_000);

  it('downloads 100 MB with the gateway RSS growing by less than 50 MB', async () => {
    let res!: Awaited<ReturnType<typeof transfer>>;
    const growthMb = await peakGrowthMb(child.pid!, async () => {
      res = await transfer('GET', '/download');
    });
    expect(res.status).toBe(200);
    expect(res.bytes).toBe(SIZE);
    expect(res.hash).toBe(expectedHash);
    console.log(`download: gateway peak RSS growth ${growthMb.toFixed(1)} MB`);
    expect(growthMb).toBeLessThan(50);
  }, 60_000);
});
