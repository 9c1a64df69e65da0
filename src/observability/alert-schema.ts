import { Type, type Static } from '@sinclair/typebox';
import { Duration, Strict, StringEnum } from '../config/types.js';

/**
 * The `alerts` section of rampart.yaml: rules over security events and traffic ratios, and the
 * webhooks they notify. Checks between fields (webhook names, rule kinds, windows) are in
 * src/config/semantics.ts (checkAlerts) so they carry positions like every other error.
 */

const NAME_PATTERN = '^[a-z0-9][a-z0-9._-]{0,63}$';
const NAME_EXPECTED = 'a name of lowercase letters, digits, ".", "_" or "-" (at most 64 characters)';

export const GROUP_BY = ['clientIp', 'actor', 'subject', 'route', 'none'] as const;
export const RATIOS = ['upstream5xx', 'serverErrors', 'denials'] as const;
export const SEVERITIES = ['INFO', 'WARN', 'CRITICAL'] as const;

const Webhook = Strict(
  {
    url: Type.String({
      pattern: '^https?://[^/?#\\s@]+([/?][^#\\s]*)?$',
      'x-expected': 'an https:// URL (http:// only to a loopback address or in development mode) with no fragment or credentials',
      description: 'Where alerts are POSTed as JSON. `http://` is allowed only to a loopback address (`127.0.0.1`, `::1`, `localhost`) or with `mode: development`. Redirects are not followed.',
    }),
    secret: Type.String({
      minLength: 32,
      description:
        'HMAC-SHA256 key the `x-rampart-signature` header is made with (at least 32 characters; use `${ENV}` or `${file:…}`, never the file itself). Never logged, masked in config dumps.',
    }),
    timeout: Duration({ description: 'Time allowed for one attempt (connecting, sending, and the answer\'s headers).', default: '5s' }),
    retries: Type.Integer({
      minimum: 0,
      maximum: 10,
      description: 'Further attempts after a network error, a timeout, 429 or 5xx (never after another 4xx), with exponential backoff and jitter.',
      default: 5,
    }),
    backoff: Duration({ description: 'Delay before the first retry; each next one doubles it (with jitter: between half and all of it). `Retry-After` from the receiver wins when present.', default: '1s' }),
    maxBackoff: Duration({ description: 'Longest delay between two attempts, `Retry-After` included.', default: '60s' }),
  },
  { description: 'A webhook alerts are delivered to, signed with its secret.' },
);

const Rule = Strict(
  {
    name: Type.String({ pattern: NAME_PATTERN, 'x-expected': NAME_EXPECTED, description: 'Unique rule name (in alerts, logs and metrics). A rule named like a built-in one replaces it.' }),
    description: Type.Optional(Type.String({ minLength: 1, maxLength: 500, description: 'What the rule watches, for the console.' })),
    kind: StringEnum(['event', 'ratio'] as const, {
      description: '`event` counts security events (`event`, grouped by `groupBy`); `ratio` watches a ratio of the traffic figures (`ratio`).',
      default: 'event',
    }),
    event: Type.Optional(
      Type.String({
        pattern: '^[a-z]+(_[a-z0-9]+)*_?$',
        'x-expected': 'an event type such as authn_login_fail, or a prefix ending in "_" such as authn_',
        description: 'Event rules: the security event type counted, exactly (`authn_login_fail`), or every type starting with a prefix ending in `_` (`authn_`). `sys_alert` events are never counted.',
      }),
    ),
    groupBy: StringEnum(GROUP_BY, {
      description: 'Event rules: counted separately per value of this event field (`none`: one count). Events without the field count in the group `unknown`. At most 10 000 groups are tracked per rule (the least recently seen are forgotten).',
      default: 'none',
    }),
    ratio: Type.Optional(
      StringEnum(RATIOS, {
        description: 'Ratio rules: `upstream5xx` (upstream 5xx answers and upstream failures over requests forwarded), `serverErrors` (5xx answers over requests), `denials` (requests denied over requests).',
      }),
    ),
    threshold: Type.Number({
      minimum: 0,
      description: 'The rule fires when the value goes over this: for event rules a count (`0`: any occurrence), for ratio rules a fraction below 1 (`0.05` is 5 %).',
    }),
    minRequests: Type.Integer({ minimum: 1, maximum: 1_000_000_000, description: 'Ratio rules: no alert unless the window holds at least this many requests (forwarded requests for `upstream5xx`).', default: 20 }),
    window: Duration({ description: 'The sliding window counted over. Ratio rules: at most 599s (the traffic figures keep 10 minutes).', default: '1m' }),
    severity: StringEnum(SEVERITIES, { description: 'Level of the alert and of its `sys_alert` event.', default: 'WARN' }),
    notify: Type.Array(Type.String({ minLength: 1, description: '`log` or the name of a webhook under `alerts.webhooks`.' }), {
      uniqueItems: true,
      description: 'Where the alert goes: `log` (the `sys_alert` security event, in the log and every other event sink) and webhooks by name. The `sys_alert` event is always emitted.',
      default: ['log'],
    }),
    dedup: Type.Optional(Duration({ description: 'After firing for a group, the rule stays quiet for that group this long (default: `alerts.dedup`).' })),
  },
  { description: 'An alert rule.' },
);

export const AlertsSchema = Strict(
  {
    defaults: Type.Boolean({
      description: 'Turn on the built-in rules: `credential-stuffing`, `token-reuse`, `upstream-5xx-ratio` and `denial-spike` (see docs/alerts.md). A rule under `rules` with the same name replaces the built-in one.',
      default: true,
    }),
    dedup: Duration({ description: 'How long a rule stays quiet for a group after firing for it (rules may set their own `dedup`).', default: '10m' }),
    webhooks: Type.Record(Type.String({ pattern: NAME_PATTERN }), Webhook, { additionalProperties: false, description: 'Webhooks by name, for rules to list in `notify`.', default: {} }),
    rules: Type.Array(Rule, { description: 'Alert rules, added to (or replacing) the built-in ones.', default: [] }),
  },
  { description: 'Alert rules over security events and traffic ratios, notifying the log and signed webhooks (docs/alerts.md).', default: {} },
);

export type AlertsConfig = Static<typeof AlertsSchema>;
export type AlertRuleConfig = Static<typeof Rule>;
export type WebhookConfig = Static<typeof Webhook>;
