import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { Counter } from 'prom-client';
import type { Logger } from 'pino';
import type { RampartConfig } from '../config/schema.js';
import { parseDuration } from '../config/units.js';
import type { AlertRuleConfig } from './alert-schema.js';
import type { EmittedEvent, EventLevel, Events } from './events.js';
import type { Metrics } from './metrics.js';
import type { TrafficTotals } from './traffic.js';
import { Webhooks, type DeliveryResult, type WebhookTarget } from './webhooks.js';

/**
 * Alert rules of one gateway process, kept across reloads (`update()` swaps the rules and keeps
 * the state of those that did not change). Event rules count security events per group in a
 * sliding window (an events sink); ratio rules read the traffic figures once a second. A rule
 * that goes over its threshold for a group fires once per de-duplication window: one `sys_alert`
 * security event (the `log` target: the log is one of the events' sinks) and one signed delivery
 * per webhook. Memory is bounded everywhere: groups per rule, de-duplication entries, history.
 */

export interface AlertNotification {
  /** `log` or a webhook's name. */
  target: string;
  status: 'pending' | 'sent' | 'failed' | 'dropped';
  attempts: number;
  error?: string;
}

export interface AlertRecord {
  id: string;
  rule: string;
  kind: 'event' | 'ratio';
  severity: EventLevel;
  /** The group's value (a client address, an actor…); null for rules without groups. */
  group: string | null;
  /** The count (event rules) or ratio (ratio rules) that went over the threshold. */
  value: number;
  threshold: number;
  /** The rule's window as configured (`1m`). */
  window: string;
  firedAt: string;
  summary: string;
  notifications: AlertNotification[];
}

export interface AlertRuleStatus {
  name: string;
  kind: 'event' | 'ratio';
  description: string;
  severity: EventLevel;
  /** Over the threshold now (event rules: some group's count in the window; ratio rules: at the last evaluation). */
  firing: boolean;
  lastFiredAt: string | null;
}

/** The built-in rules (`alerts.defaults`); a user rule of the same name replaces one. */
export const BUILTIN_RULES: readonly AlertRuleConfig[] = Object.freeze([
  {
    name: 'credential-stuffing',
    description: 'More than 20 failed logins from one client address in a minute (password guessing, credential stuffing).',
    kind: 'event',
    event: 'authn_login_fail',
    groupBy: 'clientIp',
    threshold: 20,
    minRequests: 20,
    window: '1m',
    severity: 'WARN',
    notify: ['log'],
  },
  {
    name: 'token-reuse',
    description: 'A spent refresh token was used again (a stolen token, or a client replaying one): the session was revoked.',
    kind: 'event',
    event: 'authn_token_reuse',
    groupBy: 'subject',
    threshold: 0,
    minRequests: 20,
    window: '1m',
    severity: 'CRITICAL',
    notify: ['log'],
  },
  {
    name: 'upstream-5xx-ratio',
    description: 'More than 5 % of the requests forwarded in 5 minutes got a 5xx or no answer from the upstream (at least 20 requests).',
    kind: 'ratio',
    ratio: 'upstream5xx',
    groupBy: 'none',
    threshold: 0.05,
    minRequests: 20,
    window: '5m',
    severity: 'WARN',
    notify: ['log'],
  },
  {
    name: 'denial-spike',
    description: 'More than half of the requests in 5 minutes were denied (at least 100 requests): a scan, an attack or a broken client.',
    kind: 'ratio',
    ratio: 'denials',
    groupBy: 'none',
    threshold: 0.5,
    minRequests: 100,
    window: '5m',
    severity: 'WARN',
    notify: ['log'],
  },
]);

/** Groups tracked per event rule, and de-duplication entries per rule; past it the least recent go. */
const MAX_GROUPS = 10_000;
const MAX_HISTORY = 500;
/** Sub-windows of an event rule's window: counts are exact to within one of them (1/20 of the window). */
const SLOTS = 20;
const GROUP_LENGTH = 200;

export interface AlertsOptions {
  events: Events;
  metrics: Metrics;
  logger: Logger;
  /** The clock (tests). */
  now?: () => number;
  /** How often ratio rules are evaluated, in ms (default 1000). */
  tickMs?: number;
}

/** One group's counts in an event rule's sliding window. */
class GroupWindow {
  readonly slots = new Float64Array(SLOTS).fill(-1);
  readonly counts = new Uint32Array(SLOTS);
  last = 0;

  add(slot: number): number {
    const i = slot % SLOTS;
    if (this.slots[i] !== slot) {
      this.slots[i] = slot;
      this.counts[i] = 0;
    }
    this.counts[i]!++;
    return this.count(slot);
  }

  count(slot: number): number {
    let n = 0;
    for (let i = 0; i < SLOTS; i++) if (this.slots[i]! > slot - SLOTS) n += this.counts[i]!;
    return n;
  }
}

/** Counts per group over a sliding window; groups kept in least-recently-seen order, bounded. */
class SlidingCounts {
  readonly #slotMs: number;
  readonly #windowMs: number;
  readonly #groups = new Map<string, GroupWindow>();

  constructor(windowMs: number) {
    this.#windowMs = windowMs;
    this.#slotMs = Math.max(1, Math.ceil(windowMs / SLOTS));
  }

  add(group: string, now: number): number {
    let w = this.#groups.get(group);
    if (w !== undefined) this.#groups.delete(group);
    else {
      if (this.#groups.size >= MAX_GROUPS) this.#groups.delete(this.#groups.keys().next().value!);
      w = new GroupWindow();
    }
    this.#groups.set(group, w);
    w.last = now;
    return w.add(Math.floor(now / this.#slotMs));
  }

  anyOver(threshold: number, now: number): boolean {
    const slot = Math.floor(now / this.#slotMs);
    for (const w of this.#groups.values()) if (w.count(slot) > threshold) return true;
    return false;
  }

  /** Forgets groups with nothing in the window (the least recently seen come first). */
  prune(now: number): void {
    for (const [group, w] of this.#groups) {
      if (now - w.last <= this.#windowMs) break;
      this.#groups.delete(group);
    }
  }
}

/** What a rule keeps between evaluations; carried over by `update()` when the rule is unchanged. */
interface RuleState {
  counts: SlidingCounts | undefined;
  /** Group → when the rule last fired for it (least recent first, bounded). */
  fired: Map<string, number>;
  lastFiredAt: number | undefined;
  over: boolean;
}

interface CompiledRule {
  readonly config: AlertRuleConfig;
  readonly fingerprint: string;
  readonly windowMs: number;
  readonly dedupMs: number;
  readonly match: ((type: string) => boolean) | undefined;
  readonly state: RuleState;
}

let version: string | undefined;
function gatewayVersion(): string {
  if (version === undefined) {
    try {
      version = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
    } catch {
      version = '0.0.0';
    }
  }
  return version;
}

export class Alerts {
  readonly #events: Events;
  readonly #metrics: Metrics;
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #webhooks: Webhooks;
  readonly #fired: Counter<'rule' | 'severity'>;
  readonly #notifications: Counter<'target' | 'result'>;
  readonly #history: AlertRecord[] = [];
  readonly #removeSink: () => void;
  readonly #timer: NodeJS.Timeout;
  #rules: CompiledRule[] = [];
  #eventRules: CompiledRule[] = [];
  #targets = new Map<string, WebhookTarget>();
  #closed: Promise<void> | undefined;

  constructor(config: RampartConfig, options: AlertsOptions) {
    this.#events = options.events;
    this.#metrics = options.metrics;
    this.#logger = options.logger;
    this.#now = options.now ?? Date.now;
    this.#webhooks = new Webhooks({ logger: options.logger, userAgent: `rampart/${gatewayVersion()}`, now: this.#now });
    const registers = [options.metrics.registry];
    this.#fired = new Counter({ name: 'rampart_alerts_fired_total', help: 'Alerts fired (after de-duplication), by rule and severity.', labelNames: ['rule', 'severity'], registers });
    this.#notifications = new Counter({ name: 'rampart_alert_notifications_total', help: 'Alert notifications by target (`log` or a webhook name) and result: sent, failed (after every retry), dropped (queue full).', labelNames: ['target', 'result'], registers });
    this.update(config);
    this.#removeSink = options.events.addSink((event) => this.#onEvent(event));
    this.#timer = setInterval(() => this.#tick(), options.tickMs ?? 1000);
    this.#timer.unref();
  }

  /** Applies the alert rules and webhooks of a (re)loaded config; unchanged rules keep their counts and de-duplication state. */
  update(config: RampartConfig): void {
    const alerts = config.alerts;
    const byName = new Map<string, AlertRuleConfig>();
    if (alerts.defaults) for (const rule of BUILTIN_RULES) byName.set(rule.name, rule);
    for (const rule of alerts.rules) byName.set(rule.name, rule);
    const old = new Map(this.#rules.map((r) => [r.config.name, r]));
    this.#rules = [...byName.values()].map((rule) => {
      const windowMs = parseDuration(rule.window);
      const dedupMs = parseDuration(rule.dedup ?? alerts.dedup);
      const fingerprint = JSON.stringify([rule, dedupMs]);
      const previous = old.get(rule.name);
      const state: RuleState =
        previous !== undefined && previous.fingerprint === fingerprint
          ? previous.state
          : { counts: rule.kind === 'event' ? new SlidingCounts(windowMs) : undefined, fired: new Map(), lastFiredAt: undefined, over: false };
      return { config: rule, fingerprint, windowMs, dedupMs, match: rule.kind === 'event' ? matcher(rule.event ?? '') : undefined, state };
    });
    this.#eventRules = this.#rules.filter((r) => r.match !== undefined);
    this.#targets = new Map(
      Object.entries(alerts.webhooks).map(([name, w]) => [
        name,
        { name, url: w.url, secret: w.secret, timeoutMs: parseDuration(w.timeout), retries: w.retries, backoffMs: parseDuration(w.backoff), maxBackoffMs: parseDuration(w.maxBackoff) },
      ]),
    );
  }

  /** The rules in force, built-in ones first. */
  rules(): AlertRuleStatus[] {
    const now = this.#now();
    return this.#rules.map((r) => ({
      name: r.config.name,
      kind: r.config.kind,
      description: r.config.description ?? describeRule(r.config),
      severity: r.config.severity,
      firing: r.state.counts !== undefined ? r.state.counts.anyOver(r.config.threshold, now) : r.state.over,
      lastFiredAt: r.state.lastFiredAt === undefined ? null : new Date(r.state.lastFiredAt).toISOString(),
    }));
  }

  /** Alerts fired, newest first (at most `limit`, default 50; the last 500 are kept). */
  history(limit = 50): AlertRecord[] {
    const n = Math.max(0, Math.min(MAX_HISTORY, Math.floor(limit)));
    return this.#history
      .slice(Math.max(0, this.#history.length - n))
      .reverse()
      .map((r) => ({ ...r, notifications: r.notifications.map((x) => ({ ...x })) }));
  }

  /** Resolves when every webhook delivery started so far has finished (sent, failed or dropped). */
  settled(): Promise<void> {
    return this.#webhooks.settled();
  }

  /** Stops evaluating and cancels pending deliveries (retries included). */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      clearInterval(this.#timer);
      this.#removeSink();
      await this.#webhooks.close();
    })();
    return this.#closed;
  }

  #onEvent(event: EmittedEvent): void {
    // An alert's own event never counts (no feedback loop), whatever prefix a rule watches.
    if (event.type === 'sys_alert' || this.#closed !== undefined) return;
    let now: number | undefined;
    for (const rule of this.#eventRules) {
      if (!rule.match!(event.type)) continue;
      now ??= this.#now();
      const groupBy = rule.config.groupBy;
      const group = groupBy === 'none' ? null : (event[groupBy] ?? 'unknown').slice(0, GROUP_LENGTH);
      const count = rule.state.counts!.add(group ?? '', now);
      if (count > rule.config.threshold) this.#fire(rule, group, count, now);
    }
  }

  #tick(): void {
    const now = this.#now();
    for (const rule of this.#rules) {
      rule.state.counts?.prune(now);
      for (const [group, at] of rule.state.fired) {
        if (now - at < rule.dedupMs) break;
        rule.state.fired.delete(group);
      }
      if (rule.config.kind !== 'ratio') continue;
      const summary = this.#metrics.traffic.totals(Math.round(rule.windowMs / 1000));
      const { part, whole } = ratioOf(rule.config, summary);
      const ratio = whole === 0 ? 0 : part / whole;
      rule.state.over = whole >= rule.config.minRequests && ratio > rule.config.threshold;
      if (rule.state.over) this.#fire(rule, null, Number(ratio.toFixed(4)), now, { part, whole });
    }
  }

  #fire(rule: CompiledRule, group: string | null, value: number, now: number, ratio?: { part: number; whole: number }): void {
    const key = group ?? '';
    const state = rule.state;
    const last = state.fired.get(key);
    if (last !== undefined && now - last < rule.dedupMs) return;
    state.fired.delete(key);
    if (state.fired.size >= MAX_GROUPS) state.fired.delete(state.fired.keys().next().value!);
    state.fired.set(key, now);
    state.lastFiredAt = now;
    const config = rule.config;
    const record: AlertRecord = {
      id: randomUUID(),
      rule: config.name,
      kind: config.kind,
      severity: config.severity,
      group,
      value,
      threshold: config.threshold,
      window: config.window,
      firedAt: new Date(now).toISOString(),
      summary: summarize(config, group, value, ratio),
      notifications: config.notify.map((target) => ({ target, status: 'pending', attempts: 0 })),
    };
    this.#history.push(record);
    if (this.#history.length > MAX_HISTORY) this.#history.shift();
    this.#fired.inc({ rule: config.name, severity: config.severity });
    // Out of the emitting call: the event that tripped the rule reaches every sink before the alert's own.
    queueMicrotask(() => this.#notify(record, config));
  }

  #notify(record: AlertRecord, config: AlertRuleConfig): void {
    const groupField = config.groupBy !== 'none' && record.group !== null ? { [config.groupBy]: record.group } : {};
    this.#events.emit({
      type: 'sys_alert',
      level: record.severity,
      description: `alert ${record.rule}: ${record.summary}`,
      args: [record.rule],
      ...groupField,
      data: { alert: record.id, rule: record.rule, kind: record.kind, value: record.value, threshold: record.threshold, window: record.window },
    });
    const { notifications, ...alert } = record;
    const body = JSON.stringify({ alert, gateway: { name: 'rampart', version: gatewayVersion(), hostname: hostname() } });
    for (const n of notifications) {
      if (n.target === 'log') {
        n.status = 'sent';
        n.attempts = 1;
        this.#notifications.inc({ target: 'log', result: 'sent' });
        continue;
      }
      const target = this.#targets.get(n.target);
      if (target === undefined) {
        // Only when a reload removed the webhook between firing and now (the config names are checked).
        n.status = 'failed';
        n.error = 'unknown webhook';
        continue;
      }
      this.#webhooks.send(target, body, (result: DeliveryResult) => {
        n.status = result.status;
        n.attempts = result.attempts;
        if (result.error !== undefined) n.error = result.error;
        this.#notifications.inc({ target: n.target, result: result.status });
      });
    }
    this.#logger.debug({ alert: record.id, rule: record.rule }, 'alert notifications started');
  }
}

function matcher(event: string): (type: string) => boolean {
  return event.endsWith('_') ? (type) => type.startsWith(event) : (type) => type === event;
}

function ratioOf(rule: AlertRuleConfig, s: TrafficTotals): { part: number; whole: number } {
  switch (rule.ratio) {
    case 'upstream5xx':
      return { part: s.upstream5xx + s.upstreamErrors, whole: s.upstream };
    case 'serverErrors':
      return { part: s.status['5xx'], whole: s.requests };
    case 'denials':
      return { part: s.denials, whole: s.requests };
    default:
      return { part: 0, whole: 0 };
  }
}

const RATIO_NAMES = { upstream5xx: 'upstream 5xx ratio', serverErrors: '5xx ratio', denials: 'denial ratio' } as const;
const RATIO_WHOLES = { upstream5xx: 'forwarded requests', serverErrors: 'requests', denials: 'requests' } as const;
const GROUP_WORDS = { clientIp: 'from', actor: 'by', subject: 'about', route: 'on route', none: '' } as const;

const percent = (x: number) => `${Number((x * 100).toFixed(2))}%`;

function summarize(rule: AlertRuleConfig, group: string | null, value: number, ratio?: { part: number; whole: number }): string {
  if (rule.kind === 'ratio' && rule.ratio !== undefined) {
    const counts = ratio === undefined ? '' : ` (${ratio.part} of ${ratio.whole} ${RATIO_WHOLES[rule.ratio]})`;
    return `${RATIO_NAMES[rule.ratio]} ${percent(value)}${counts} in ${rule.window} (over ${percent(rule.threshold)})`;
  }
  const event = rule.event?.endsWith('_') ? `${rule.event}*` : rule.event;
  const who = group === null ? '' : ` ${GROUP_WORDS[rule.groupBy]} ${group}`;
  return `${event}${who}: ${value} in ${rule.window} (over ${rule.threshold})`;
}

function describeRule(rule: AlertRuleConfig): string {
  if (rule.kind === 'ratio' && rule.ratio !== undefined) {
    return `${RATIO_NAMES[rule.ratio]} over ${percent(rule.threshold)} in ${rule.window} (at least ${rule.minRequests} ${RATIO_WHOLES[rule.ratio]})`;
  }
  const event = rule.event?.endsWith('_') ? `${rule.event}*` : rule.event;
  const per = rule.groupBy === 'none' ? '' : ` per ${rule.groupBy}`;
  return rule.threshold === 0 ? `any ${event} event` : `more than ${rule.threshold} ${event} events${per} in ${rule.window}`;
}
