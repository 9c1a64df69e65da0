// Regression (found by test/fuzz/config.fuzz.test.ts): the maps keyed by a name (`upstreams`,
// `versions`, `alerts.webhooks`, `identity.scopes`) validated only the keys that matched the name
// pattern. An entry under any other key (`App`, `""`, `my upstream`) was not checked at all: its
// value reached the semantic checks unvalidated and the loader crashed with a TypeError instead of
// reporting the file, line and column (`upstreams: { App: … }`), or was kept silently.
import { expect, it } from 'vitest';
import { configIssues } from '../helpers/config.js';

const route = 'routes:\n  - { name: r, match: { path: /r }, upstream: app, public: true }\n';

it('config-map-keys-skip-validation: a name that breaks the pattern is a located error, never a crash or silently kept', () => {
  expect(configIssues(`upstreams:\n  app: { targets: [{ url: 'http://127.0.0.1:1' }] }\n  App: { targets: [{ url: 'http://127.0.0.1:2' }] }\n${route}`)).toEqual([
    `rampart.yaml:3:3: upstreams.App: invalid name 'App': expected a name of lowercase letters, digits, ".", "_" or "-"`,
  ]);
  expect(configIssues(`upstreams:\n  app: { targets: [{ url: 'http://127.0.0.1:1' }] }\n  "": 0\n${route}`)).toEqual([
    `rampart.yaml:3:3: upstreams[""]: invalid name '': expected a name of lowercase letters, digits, ".", "_" or "-"`,
  ]);
  expect(configIssues(`upstreams:\n  app: { targets: [{ url: 'http://127.0.0.1:1' }] }\nversions:\n  V1: 0\n${route}`)).toEqual([
    `rampart.yaml:4:3: versions.V1: invalid name 'V1': expected a name of lowercase letters, digits, ".", "_" or "-"`,
  ]);
  expect(configIssues(`upstreams:\n  app: { targets: [{ url: 'http://127.0.0.1:1' }] }\nalerts:\n  webhooks:\n    Ops Team: { url: 'https://hooks.example.com/x' }\n${route}`)).toEqual([
    `rampart.yaml:5:5: alerts.webhooks["Ops Team"]: invalid name 'Ops Team': expected a name of lowercase letters, digits, ".", "_" or "-"`,
  ]);
  const identity = `mode: development\nidentity:\n  issuer: https://id.example.com\n  scopes:\n    user: [notes:read]\n    Admin: [notes:write]\n`;
  expect(configIssues(`upstreams:\n  app: { targets: [{ url: 'http://127.0.0.1:1' }] }\n${identity}${route}`)).toEqual([
    `rampart.yaml:8:5: identity.scopes.Admin: invalid name 'Admin': expected a role name of lowercase letters, digits, "_" or "-", starting with a letter`,
  ]);
});
