import type { Logger } from 'pino';

/**
 * Security events in the OWASP logging vocabulary (`sys_startup`, `authn_login_fail`,
 * `input_validation_fail`, …): one `emit()` for every caller, fanned out to every sink. The log
 * sink is always there; the audit table, the live ring and alerts add themselves as sinks.
 */

export type EventLevel = 'INFO' | 'WARN' | 'CRITICAL';

export interface SecurityEvent {
  /** OWASP vocabulary name, `area_verb` (e.g. `sys_startup`, `authz_fail`). */
  type: string;
  level: EventLevel;
  description: string;
  /** Values the OWASP form appends after a colon (`authn_login_fail:alice`). Never secrets. */
  args?: readonly string[];
  requestId?: string;
  clientIp?: string;
  route?: string;
  /** Who acted: a user id, `client:<id>` or `system` — never an e-mail. */
  actor?: string;
  /** Whom or what it was about: a user id, a key id. */
  subject?: string;
  data?: Readonly<Record<string, string | number | boolean>>;
}

export interface EmittedEvent extends SecurityEvent {
  /** `type` with its args, as OWASP writes it: `authn_login_fail:alice`. */
  readonly event: string;
  readonly time: string;
}

export type EventSink = (event: EmittedEvent) => void;

export interface Events {
  emit(event: SecurityEvent): void;
  /** Adds a sink; returns a function that removes it. */
  addSink(sink: EventSink): () => void;
}

const TYPE = /^[a-z]+(_[a-z0-9]+)+$/;

export function createEvents(logger: Logger): Events {
  const sinks = new Set<EventSink>();
  const log: EventSink = (e) => {
    const record = { type: 'event', event: e.event, eventLevel: e.level, requestId: e.requestId, clientIp: e.clientIp, route: e.route, actor: e.actor, subject: e.subject, data: e.data };
    if (e.level === 'CRITICAL') logger.error(record, e.description);
    else if (e.level === 'WARN') logger.warn(record, e.description);
    else logger.info(record, e.description);
  };
  sinks.add(log);
  return {
    emit(event) {
      if (!TYPE.test(event.type)) throw new TypeError(`event type '${event.type}' is not in area_verb form`);
      const args = event.args?.map((a) => a.replace(/[:,\r\n]/g, '_')).join(',');
      const emitted: EmittedEvent = Object.freeze({
        ...event,
        event: args ? `${event.type}:${args}` : event.type,
        time: new Date().toISOString(),
      });
      for (const sink of sinks) {
        try {
          sink(emitted);
        } catch (error) {
          logger.error({ err: error }, 'event sink failed');
        }
      }
    },
    addSink(sink) {
      sinks.add(sink);
      return () => sinks.delete(sink);
    },
  };
}
