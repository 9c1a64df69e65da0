import { connect } from 'node:net';

/**
 * Whether the shared Redis on 127.0.0.1:6379 answers. Without it, Redis tests skip with a visible
 * message, unless RAMPART_REQUIRE_SERVICES=1 (CI), where they run and fail.
 */
export async function redisAvailable(): Promise<boolean> {
  if (process.env.RAMPART_REQUIRE_SERVICES === '1') return true;
  const up = await new Promise<boolean>((resolve) => {
    const socket = connect(6379, '127.0.0.1', () => socket.write('*1\r\n$4\r\nPING\r\n'));
    socket.once('data', (d: Buffer) => (socket.destroy(), resolve(d.toString() === '+PONG\r\n')));
    socket.once('error', () => resolve(false));
    socket.setTimeout(2000, () => (socket.destroy(), resolve(false)));
  });
  if (!up) console.warn('SKIPPED: Redis is not running on 127.0.0.1:6379; its tests skip (set RAMPART_REQUIRE_SERVICES=1 to fail instead)');
  return up;
}
