import { describe, expect, it } from 'vitest';
import { loadConfigText } from './load.js';
import { ConfigError, formatIssue } from './errors.js';

const SECRET = 'x'.repeat(32);
const load = (text: string, env: NodeJS.ProcessEnv = {}) => loadConfigText(text, 'rampart.yaml', '/tmp', env);

function issuesOf(text: string, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    load(text, env);
  } catch (error) {
    if (error instanceof ConfigError) return error.issues.map(formatIssue);
    throw error;
  }
  throw new Error('expected the config to be rejected');
}

describe('alerts config', () => {
  it('is on by default with the built-in rules, and fills every default of a webhook and a rule', () => {
    expect(load('{}').config.alerts).toEqual({ defaults: true, dedup: '10m', webhooks: {}, rules: [] });
    const { config } = load(`alerts:
  webhooks:
    ops:
      url: https://hooks.example.com/rampart
      secret: \${RAMPART_WEBHOOK_SECRET}
  rules:
    - name: login-failures-by-ip
      event: authn_login_fail
      groupBy: clientIp
      threshold: 20
      notify: [log, ops]
    - name: upstream-errors
      kind: ratio
      ratio: upstream5xx
      threshold: 0.05
      window: 5m
`, { RAMPART_WEBHOOK_SECRET: SECRET });
    expect(config.alerts.webhooks.ops).toEqual({ url: 'https://hooks.example.com/rampart', secret: SECRET, timeout: '5s', retries: 5, backoff: '1s', maxBackoff: '60s' });
    expect(config.alerts.rules[0]).toEqual({ name: 'login-failures-by-ip', kind: 'event', event: 'authn_login_fail', groupBy: 'clientIp', threshold: 20, minRequests: 20, window: '1m', severity: 'WARN', notify: ['log', 'ops'] });
    expect(config.alerts.rules[1]).toMatchObject({ kind: 'ratio', ratio: 'upstream5xx', groupBy: 'none', window: '5m' });
  });

  it('reports an unknown webhook name, a duplicate rule name and plain http to another host, with positions', () => {
    const text = `alerts:
  webhooks:
    ops:
      url: http://hooks.example.com/rampart
      secret: ${SECRET}
  rules:
    - name: logins
      event: authn_login_fail
      threshold: 20
      notify: [log, opz]
    - name: logins
      event: authn_
      threshold: 1
      notify: [pager]
`;
    expect(issuesOf(text)).toEqual([
      "rampart.yaml:4:12: alerts.webhooks.ops.url: http:// sends alerts and their signatures in the clear: expected https://, or http:// to a loopback address (127.0.0.1, ::1, localhost), or 'mode: development'; got host 'hooks.example.com'",
      "rampart.yaml:10:21: alerts.rules[0].notify[1]: unknown notification target 'opz' (did you mean 'ops'?)",
      "rampart.yaml:11:13: alerts.rules[1].name: duplicate rule name 'logins' (also alerts.rules[0])",
      "rampart.yaml:14:16: alerts.rules[1].notify[0]: unknown notification target 'pager'; expected log or a webhook under alerts.webhooks (defined: log, ops)",
    ]);
  });

  it('allows plain http to a loopback address, or to any host in development mode', () => {
    const hook = (url: string, mode = 'production') => `mode: ${mode}\nalerts:\n  webhooks:\n    ops: { url: '${url}', secret: ${SECRET} }\n`;
    for (const url of ['http://127.0.0.1:9000/hook', 'http://localhost/hook', 'http://[::1]:8080/hook', 'https://hooks.example.com/x?token=abc']) {
      expect(load(hook(url)).config.alerts.webhooks.ops!.url, url).toBe(url);
    }
    expect(load(hook('http://hooks.example.com/x', 'development')).config.alerts.webhooks.ops!.url).toBe('http://hooks.example.com/x');
    expect(issuesOf(hook('http://127.0.0.1.example.com/x'))[0]).toContain("got host '127.0.0.1.example.com'");
    expect(issuesOf(hook('ftp://hooks.example.com/x'))).toEqual([expect.stringContaining('alerts.webhooks.ops.url: expected an https:// URL')]);
    expect(issuesOf(hook('https://user:pw@hooks.example.com/x'))).toEqual([expect.stringContaining('alerts.webhooks.ops.url: expected an https:// URL')]);
  });

  it('refuses a short secret without quoting it', () => {
    const issues = issuesOf(`alerts:\n  webhooks:\n    ops: { url: 'https://h.example.com/', secret: short-secret }\n`);
    expect(issues).toEqual(['rampart.yaml:3:51: alerts.webhooks.ops.secret: expected at least 32 characters']);
  });

  it('checks what each kind of rule needs, thresholds and windows', () => {
    const text = `alerts:
  rules:
    - name: no-event
      threshold: 1
    - name: ratio-without-ratio
      kind: ratio
      threshold: 0.1
    - name: too-long
      kind: ratio
      ratio: denials
      threshold: 1.5
      window: 10m
      groupBy: clientIp
    - name: fractional
      event: authn_login_fail
      threshold: 2.5
      dedup: 0s
    - name: self
      event: sys_alert
      threshold: 0
`;
    expect(issuesOf(text)).toEqual([
      "rampart.yaml:3:7: alerts.rules[0]: an event rule needs 'event': an event type such as authn_login_fail, or a prefix ending in '_'",
      "rampart.yaml:5:7: alerts.rules[1]: a ratio rule needs 'ratio': upstream5xx, serverErrors or denials",
      'rampart.yaml:11:18: alerts.rules[2].threshold: expected a fraction below 1 (0.05 is 5 %): a ratio never goes over 1',
      'rampart.yaml:12:15: alerts.rules[2].window: expected whole seconds between 1s and 599s (the traffic figures keep 10 minutes, per second)',
      'rampart.yaml:13:16: alerts.rules[2].groupBy: ratio rules watch the whole traffic and have no groups',
      'rampart.yaml:16:18: alerts.rules[3].threshold: expected a whole count between 0 and 1000000 (the rule fires when the count goes over it)',
      'rampart.yaml:17:14: alerts.rules[3].dedup: expected a duration above 0 (0 would fire on every event over the threshold)',
      'rampart.yaml:19:14: alerts.rules[4].event: sys_alert events (alerts themselves) are never counted',
    ]);
    expect(issuesOf('alerts:\n  rules:\n    - { name: Bad Name, event: Authn, threshold: -1, kind: count, groupBy: ip }\n')).toEqual([
      'rampart.yaml:3:15: alerts.rules[0].name: expected a name of lowercase letters, digits, ".", "_" or "-" (at most 64 characters), got \'Bad Name\'',
      'rampart.yaml:3:32: alerts.rules[0].event: expected an event type such as authn_login_fail, or a prefix ending in "_" such as authn_, got \'Authn\'',
      'rampart.yaml:3:50: alerts.rules[0].threshold: expected a number >= 0, got number -1',
      'rampart.yaml:3:60: alerts.rules[0].kind: expected one of "event", "ratio", got \'count\'',
      'rampart.yaml:3:76: alerts.rules[0].groupBy: expected one of "clientIp", "actor", "subject", "route", "none", got \'ip\'',
    ]);
  });
});
