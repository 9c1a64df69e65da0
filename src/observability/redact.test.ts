import { describe, expect, it } from 'vitest';
import { captureLogs } from '../../test/helpers/gateway.js';
import { createLogger } from './logger.js';
import { redactQuery, REDACTED } from './redact.js';

describe('the one redaction list', () => {
  it('censors credential headers and secret fields in logged containers, not the log vocabulary', async () => {
    const logs = captureLogs();
    const logger = createLogger({ level: 'info', destination: 'stdout' }, logs.stream);
    logger.info(
      {
        req: { headers: { authorization: 'Bearer t0k', 'x-api-key': 'k3y', accept: 'json' } },
        headers: { cookie: 'sid=c00kie' },
        body: { password: 'hunter2', refresh_token: 'r1', name: 'alice' },
        query: { access_token: 'q1', page: '2' },
        err: { code: 'ECONNREFUSED' },
        errorCode: 'RMP_INTERNAL',
      },
      'x',
    );
    const line = await logs.waitFor(() => true);
    expect(line).toMatchObject({
      req: { headers: { authorization: REDACTED, 'x-api-key': REDACTED, accept: 'json' } },
      headers: { cookie: REDACTED },
      body: { password: REDACTED, refresh_token: REDACTED, name: 'alice' },
      query: { access_token: REDACTED, page: '2' },
      err: { code: 'ECONNREFUSED' },
      errorCode: 'RMP_INTERNAL',
    });
  });

  it('redacts query parameters by decoded, case-insensitive name and keeps the rest byte for byte', () => {
    expect(redactQuery('/a')).toBe('/a');
    expect(redactQuery('/a?x=%20y&Token=abc&t%6Fken=d&key&code=1')).toBe(`/a?x=%20y&Token=${REDACTED}&t%6Fken=${REDACTED}&key=${REDACTED}&code=${REDACTED}`);
    expect(redactQuery('/a?%E0%A4%A=1&password=p')).toBe(`/a?%E0%A4%A=1&password=${REDACTED}`);
  });
});

describe('regressions', () => {
  it('query-redaction-cpu: redacting never decodes with exceptions (a hostile query cost ~11 ms of CPU)', () => {
    const original = globalThis.decodeURIComponent;
    globalThis.decodeURIComponent = () => {
      throw new Error('decodeURIComponent must not be used on the per-request path');
    };
    try {
      const hostile = '/a?' + Array(2000).fill('%E0%A4%A=1').join('&') + '&t%6Fken=x';
      expect(redactQuery(hostile).endsWith(`&t%6Fken=${REDACTED}`)).toBe(true);
      expect(redactQuery('/a?' + 'k'.repeat(500) + '=1&password=p')).toBe(`/a?${'k'.repeat(500)}=1&password=${REDACTED}`);
    } finally {
      globalThis.decodeURIComponent = original;
    }
  });
});
