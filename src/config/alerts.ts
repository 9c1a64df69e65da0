import { isIP } from 'node:net';
import type { RampartConfig } from './schema.js';
import { parseDuration } from './units.js';
import { didYouMean, type ConfigIssue } from './errors.js';
import type { Source } from './load.js';

/** The longest window of a ratio rule: the traffic figures keep 600 one-second buckets, the current one unfinished. */
export const MAX_RATIO_WINDOW_SECONDS = 599;

/** `alerts`: webhook URLs, rule names, what each kind of rule needs, thresholds, windows, notify targets. */
export function checkAlerts(config: RampartConfig, source: Source, issues: ConfigIssue[]): void {
  const alerts = config.alerts;
  const at = (...rest: (string | number)[]) => ['alerts', ...rest];
  if (parseDuration(alerts.dedup) === 0) issues.push(source.issue(at('dedup'), 'expected a duration above 0 (0 would fire on every event over the threshold)'));

  for (const [name, webhook] of Object.entries(alerts.webhooks)) {
    // The schema's pattern lets through what `new URL` refuses (`http://.0.0.1`, a port over 65535).
    if (!URL.canParse(webhook.url)) {
      issues.push(source.issue(at('webhooks', name, 'url'), `expected an https:// URL (http:// only to a loopback address or in development mode) with no fragment or credentials, got '${webhook.url}'`));
      continue;
    }
    const url = new URL(webhook.url);
    if (url.protocol === 'http:' && !isLoopback(url.hostname) && config.mode !== 'development') {
      issues.push(source.issue(at('webhooks', name, 'url'), `http:// sends alerts and their signatures in the clear: expected https://, or http:// to a loopback address (127.0.0.1, ::1, localhost), or 'mode: development'; got host '${url.hostname}'`));
    }
    if (parseDuration(webhook.timeout) === 0) issues.push(source.issue(at('webhooks', name, 'timeout'), 'expected a duration above 0 (0 would disable this timeout)'));
    if (parseDuration(webhook.backoff) === 0) issues.push(source.issue(at('webhooks', name, 'backoff'), 'expected a duration above 0'));
    if (parseDuration(webhook.backoff) > parseDuration(webhook.maxBackoff)) issues.push(source.issue(at('webhooks', name, 'backoff'), 'expected at most maxBackoff'));
    if (parseDuration(webhook.maxBackoff) > 3_600_000) issues.push(source.issue(at('webhooks', name, 'maxBackoff'), 'expected at most 1h'));
  }

  const targets = ['log', ...Object.keys(alerts.webhooks)];
  const names = new Map<string, number>();
  alerts.rules.forEach((rule, i) => {
    const path = (...rest: (string | number)[]) => at('rules', i, ...rest);
    const first = names.get(rule.name);
    if (first !== undefined) issues.push(source.issue(path('name'), `duplicate rule name '${rule.name}' (also alerts.rules[${first}])`));
    else names.set(rule.name, i);

    const windowMs = parseDuration(rule.window);
    if (rule.kind === 'event') {
      if (rule.event === undefined) issues.push(source.issue(path(), "an event rule needs 'event': an event type such as authn_login_fail, or a prefix ending in '_'"));
      else if (rule.event === 'sys_alert') issues.push(source.issue(path('event'), 'sys_alert events (alerts themselves) are never counted'));
      if (rule.ratio !== undefined) issues.push(source.issue(path('ratio'), "'ratio' is for rules of kind 'ratio'"));
      if (!Number.isInteger(rule.threshold) || rule.threshold > 1_000_000) issues.push(source.issue(path('threshold'), 'expected a whole count between 0 and 1000000 (the rule fires when the count goes over it)'));
      if (windowMs < 1000 || windowMs > 86_400_000) issues.push(source.issue(path('window'), 'expected a duration between 1s and 1d'));
    } else {
      if (rule.ratio === undefined) issues.push(source.issue(path(), "a ratio rule needs 'ratio': upstream5xx, serverErrors or denials"));
      if (rule.event !== undefined) issues.push(source.issue(path('event'), "'event' is for rules of kind 'event'"));
      if (rule.groupBy !== 'none') issues.push(source.issue(path('groupBy'), 'ratio rules watch the whole traffic and have no groups'));
      if (rule.threshold >= 1) issues.push(source.issue(path('threshold'), 'expected a fraction below 1 (0.05 is 5 %): a ratio never goes over 1'));
      if (windowMs < 1000 || windowMs > MAX_RATIO_WINDOW_SECONDS * 1000 || windowMs % 1000 !== 0) {
        issues.push(source.issue(path('window'), `expected whole seconds between 1s and ${MAX_RATIO_WINDOW_SECONDS}s (the traffic figures keep 10 minutes, per second)`));
      }
    }
    if (rule.dedup !== undefined && parseDuration(rule.dedup) === 0) issues.push(source.issue(path('dedup'), 'expected a duration above 0 (0 would fire on every event over the threshold)'));
    rule.notify.forEach((target, j) => {
      if (targets.includes(target)) return;
      const suggestion = didYouMean(target, targets);
      const hint = suggestion !== undefined ? ` (did you mean '${suggestion}'?)` : `; expected log or a webhook under alerts.webhooks (defined: ${targets.join(', ')})`;
      issues.push(source.issue(path('notify', j), `unknown notification target '${target}'${hint}`));
    });
  });
}

function isLoopback(host: string): boolean {
  const bare = host.startsWith('[') ? host.slice(1, -1) : host;
  if (bare === 'localhost' || bare.endsWith('.localhost')) return true;
  if (isIP(bare) === 4) return bare.startsWith('127.');
  return bare === '::1';
}
