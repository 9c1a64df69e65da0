import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';

/**
 * The shared Redis and PostgreSQL the store backends are tested against. Without them the backend
 * tests skip with this message; CI sets RAMPART_REQUIRE_SERVICES=1 so they can never skip there.
 */
function talk(port: number, send: Buffer | string | undefined): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => (send === undefined ? (socket.end(), resolve(Buffer.alloc(0))) : socket.write(send)));
    socket.once('data', (d: Buffer) => {
      socket.destroy();
      resolve(d);
    });
    socket.once('error', reject);
    socket.setTimeout(3000, () => socket.destroy(new Error('timeout')));
  });
}

const required = process.env.RAMPART_REQUIRE_SERVICES === '1';

describe('shared services', () => {
  it('Redis answers PING on 127.0.0.1:6379', async (t) => {
    const reply = await talk(6379, '*1\r\n$4\r\nPING\r\n').catch((e: Error) => e);
    if (reply instanceof Error && !required) return t.skip(`Redis is not running on 127.0.0.1:6379 (${reply.message}); set RAMPART_REQUIRE_SERVICES=1 to fail instead`);
    expect(reply.toString()).toBe('+PONG\r\n');
  });

  it('PostgreSQL answers an SSLRequest on 127.0.0.1:5432', async (t) => {
    // SSLRequest: length 8, code 80877103. A PostgreSQL server answers 'S' or 'N'.
    const request = Buffer.alloc(8);
    request.writeInt32BE(8, 0);
    request.writeInt32BE(80877103, 4);
    const reply = await talk(5432, request).catch((e: Error) => e);
    if (reply instanceof Error && !required) return t.skip(`PostgreSQL is not running on 127.0.0.1:5432 (${reply.message}); set RAMPART_REQUIRE_SERVICES=1 to fail instead`);
    expect(['S', 'N']).toContain((reply as Buffer).toString('latin1', 0, 1));
  });
});
