import { describe, expect, it } from 'vitest';
import { captureLogs } from '../../test/helpers/gateway.js';
import { createEvents, type EmittedEvent } from './events.js';
import { createLogger } from './logger.js';

describe('events', () => {
  function setup() {
    const logs = captureLogs();
    const events = createEvents(createLogger({ level: 'info', destination: 'stdout' }, logs.stream));
    return { logs, events };
  }

  it('sends every event to the log and to every sink, in the OWASP form', async () => {
    const { logs, events } = setup();
    const seen: EmittedEvent[] = [];
    const remove = events.addSink((e) => seen.push(e));
    events.emit({ type: 'authn_login_fail', level: 'WARN', description: 'login failed', args: ['alice'], requestId: 'r1', clientIp: '203.0.113.9' });
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ event: 'authn_login_fail:alice', type: 'authn_login_fail', level: 'WARN', requestId: 'r1' });
    expect(seen[0]!.time).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(Object.isFrozen(seen[0])).toBe(true);
    const line = await logs.waitFor((l) => l.type === 'event');
    expect(line).toMatchObject({ level: 'warn', event: 'authn_login_fail:alice', eventLevel: 'WARN', clientIp: '203.0.113.9', msg: 'login failed' });
    remove();
    events.emit({ type: 'sys_startup', level: 'INFO', description: 'up' });
    expect(seen).toHaveLength(1);
  });

  it('keeps separators out of args, so a value cannot forge another event field', () => {
    const { events } = setup();
    const seen: EmittedEvent[] = [];
    events.addSink((e) => seen.push(e));
    events.emit({ type: 'authn_login_fail', level: 'WARN', description: 'x', args: ['eve:admin,\r\nsys_crash'] });
    expect(seen[0]!.event).toBe('authn_login_fail:eve_admin___sys_crash');
  });

  it('refuses types outside the area_verb vocabulary form', () => {
    const { events } = setup();
    expect(() => events.emit({ type: 'Login Failed', level: 'INFO', description: 'x' })).toThrow(/area_verb/);
  });

  it('a failing sink neither stops the others nor the caller', async () => {
    const { logs, events } = setup();
    const seen: string[] = [];
    events.addSink(() => {
      throw new Error('sink down');
    });
    events.addSink((e) => seen.push(e.event));
    expect(() => events.emit({ type: 'sys_restart', level: 'INFO', description: 'x' })).not.toThrow();
    expect(seen).toEqual(['sys_restart']);
    await logs.waitFor((l) => l.msg === 'event sink failed');
  });
});
