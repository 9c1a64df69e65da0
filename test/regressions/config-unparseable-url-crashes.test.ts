// Regression (found by test/fuzz/config.fuzz.test.ts): an upstream target or alert webhook URL
// that matches the schema's pattern but is no URL (`http://.0.0.1:1`, a port over 65535, an
// unclosed `[`) crashed: for a webhook the loader threw a TypeError, and for a target the config
// loaded and building it (start, reload) threw `Invalid URL` instead of a located config error.
import { expect, it } from 'vitest';
import { configIssues } from '../helpers/config.js';

const route = 'routes:\n  - { name: r, match: { path: /r }, upstream: app, public: true }\n';

it('config-unparseable-url-crashes: a target or webhook URL that does not parse is a located error', () => {
  for (const url of ['http://.0.0.1:1', 'http://127.0.0.1:99999', 'http://[::1', 'http://%zz']) {
    expect(configIssues(`upstreams:\n  app:\n    targets:\n      - url: '${url}'\n${route}`), url).toEqual([
      `rampart.yaml:4:14: upstreams.app.targets[0].url: expected an http:// or https:// URL with no query or fragment, got '${url}'`,
    ]);
    expect(configIssues(`upstreams:\n  app: { targets: [{ url: 'http://127.0.0.1:1' }] }\nalerts:\n  webhooks:\n    ops: { url: '${url}', secret: '${'s'.repeat(32)}' }\n${route}`), url).toEqual([
      `rampart.yaml:5:17: alerts.webhooks.ops.url: expected an https:// URL (http:// only to a loopback address or in development mode) with no fragment or credentials, got '${url}'`,
    ]);
  }
});
