import { describe, expect, it } from 'vitest';
import { hostileBodies } from '../../../test/fixtures/hostile-bodies.js';
import { banners, cardNumber, lineFrom, luhn, mask, passwordHash, privateKeys, rawIndex, sqlError, stackTrace, tokens, readableText } from './signatures.js';

/** The text signatures, each with what it must recognise and the ordinary text it must not. */

describe('sqlError', () => {
  const cases: [string, string][] = [
    ['SQLite', 'SQLITE_ERROR: near "x": syntax error'],
    ['SQLite', 'sqlite3.OperationalError: unrecognized token: "\'"'],
    ['PostgreSQL', 'ERROR:  unterminated quoted string at or near "\'" LINE 1'],
    ['PostgreSQL', 'org.postgresql.util.PSQLException: ERROR: syntax error at or near "x"'],
    ['MySQL/MariaDB', "You have an error in your SQL syntax; check the manual that corresponds to your MySQL server version for the right syntax to use near '''' at line 1"],
    ['SQL Server', "Unclosed quotation mark after the character string ''."],
    ['SQL Server', "Incorrect syntax near 'x'."],
    ['Oracle', 'ORA-01756: quoted string not properly terminated'],
    ['SQL (driver or ORM)', 'SQLSTATE[42000]: Syntax error or access violation'],
  ];
  for (const [label, text] of cases) it(`${label}: ${text.slice(0, 40)}`, () => expect(sqlError(`{"error": ${JSON.stringify(text)}}`)?.label).toBe(label));

  it('ordinary text is no database error', () => {
    for (const text of ['{"results": [], "q": "select * from notes"}', 'syntax error in your YAML', 'The ORA-1 flight', 'Error: not found', '{"error":"invalid input"}']) expect(sqlError(text), text).toBeUndefined();
  });
});

describe('stackTrace', () => {
  const cases: [string, string][] = [
    ['Node.js', 'Error: boom\n    at handler (/srv/app/index.js:10:5)\n    at Layer.handle (/srv/app/node_modules/express/lib/router/layer.js:95:5)'],
    ['Node.js', 'Error: boom\n    at handler (file:///srv/app/index.mjs:10:5)\n    at node:internal/process/task_queues:95:5'],
    ['Java', 'java.lang.NullPointerException\n\tat com.example.Api.get(Api.java:42)\n\tat org.springframework.web.Dispatcher.doDispatch(Dispatcher.java:1067)'],
    ['Python', 'Traceback (most recent call last):\n  File "/app/main.py", line 12, in <module>\n    main()'],
    ['.NET', "System.NullReferenceException: Object reference not set\n   at Api.Controllers.Notes.Get(Int32 id) in C:\\src\\Notes.cs:line 42"],
    ['PHP', "PHP Fatal error:  Uncaught Error: Call to undefined function foo() in /var/www/index.php on line 3"],
    ['PHP', '<b>Warning</b>:  mysqli_query() expects parameter 1 in <b>/var/www/html/db.php</b> on line <b>7</b>'],
    ['Go', 'panic: runtime error: index out of range\n\ngoroutine 1 [running]:\nmain.main()\n\t/app/main.go:8 +0x1d'],
    ['Ruby', "app/controllers/notes_controller.rb:10:in `show'\nactionpack (7.0.4) lib/action_controller/metal/basic_implicit_render.rb:6:in `send_action'"],
  ];
  for (const [label, text] of cases) it(`${label}`, () => expect(stackTrace(text)?.label).toBe(label));

  it('in a JSON body, once its escapes are read', () => {
    const body = JSON.stringify({ error: 'boom', stack: 'Error: boom\n    at a (/srv/x.js:1:2)\n    at b (/srv/y.js:3:4)' });
    expect(stackTrace(body)).toBeUndefined();
    expect(stackTrace(readableText(body))?.label).toBe('Node.js');
  });

  it("in Express's development error page (<br> and &nbsp;)", () => {
    const page = '<pre>Error: boom<br> &nbsp; &nbsp;at handler (/srv/app/index.js:10:5)<br> &nbsp; &nbsp;at Layer.handle [as handle_request] (/srv/app/node_modules/express/lib/router/layer.js:95:5)</pre>';
    expect(stackTrace(page)).toBeUndefined();
    expect(stackTrace(readableText(page))?.label).toBe('Node.js');
  });

  it('one frame-looking line, prose or a URL is no trace', () => {
    for (const text of ['Meet us at the office (/floor/2:3:4)', 'see https://example.com/a.js:10:5', '    at one (/srv/x.js:1:2)', 'Traceback is a word', 'goroutine leaks explained']) expect(stackTrace(text), text).toBeUndefined();
  });
});

describe('banners', () => {
  it('debug pages at any status, with their severity', () => {
    expect(banners('<title>Werkzeug Debugger</title>', 200)).toMatchObject([{ severity: 'high' }]);
    expect(banners("You're seeing this error because you have <code>DEBUG = True</code> in your Django settings file.", 404)).toMatchObject([{ severity: 'medium', label: expect.stringMatching(/Django/) }]);
  });

  it('default error pages (low) only on error answers: a 200 may be documentation', () => {
    const whitelabel = '<html><body><h1>Whitelabel Error Page</h1>This application has no explicit mapping for /error</body></html>';
    expect(banners(whitelabel, 500)).toMatchObject([{ severity: 'low', label: expect.stringMatching(/Spring Boot/) }]);
    expect(banners(whitelabel, 200)).toEqual([]);
    expect(banners('<hr><center>nginx/1.18.0</center>', 502)).toMatchObject([{ label: 'nginx', text: '<center>nginx/1.18.0</center>' }]);
    expect(banners('<hr><center>nginx</center>', 502)).toEqual([]); // no version, nothing said
    expect(banners('<pre>Cannot GET /api/nope</pre>', 404)).toMatchObject([{ label: 'Express default error page' }]);
  });
});

describe('secrets', () => {
  it('PEM private keys with a body, also JSON-escaped; a header alone or a public key is none', () => {
    const pem = `-----BEGIN EC PRIVATE KEY-----\n${'MHcCAQEEIB'.repeat(8)}\n-----END EC PRIVATE KEY-----`;
    expect(privateKeys(pem)).toMatchObject([{ label: 'PEM EC PRIVATE KEY' }]);
    expect(privateKeys(JSON.stringify({ key: pem }))).toHaveLength(1);
    expect(privateKeys('Paste your key, starting with -----BEGIN PRIVATE KEY-----, here. -----END PRIVATE KEY-----')).toEqual([]);
    expect(privateKeys(`-----BEGIN PUBLIC KEY-----\n${'MFkwEwYHKo'.repeat(8)}\n-----END PUBLIC KEY-----`)).toEqual([]);
  });

  it('well-known token formats; documented examples are not secrets', () => {
    const aws = `AKIA${'Q'.repeat(16)}`;
    const gh = `ghp_${'a1B2'.repeat(9)}`;
    expect(tokens(`{"k":"${aws}","g":"${gh}"}`).map((t) => t.label)).toEqual(['AWS access key ID', 'GitHub token']);
    expect(tokens('{"k":"AKIAIOSFODNN7EXAMPLE"}')).toEqual([]);
    expect(tokens('{"jwt":"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1In0.c2ln","id":"AKIA-short"}')).toEqual([]);
  });

  it('password hashes as the whole value', () => {
    expect(passwordHash(`$2b$12$${'a'.repeat(53)}`)).toBe('bcrypt');
    expect(passwordHash('$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG')).toBe('argon2');
    expect(passwordHash(`$6$rounds=5000$saltsalt$${'b'.repeat(86)}`)).toBe('SHA-crypt');
    expect(passwordHash(`hashes look like $2b$12$${'a'.repeat(53)}`)).toBeUndefined();
    expect(passwordHash('5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8')).toBeUndefined(); // a bare digest says nothing about what it hashes
    expect(passwordHash('$argon2id$v=19$m=19456,t=2,p=1$…')).toBeUndefined();
  });

  it('card numbers: a scheme range and length, Luhn; ids, times and phone numbers are none', () => {
    expect(luhn('4111111111111111')).toBe(true);
    expect(cardNumber('4111 1111 1111 1111')).toBe('Visa');
    expect(cardNumber('5555-5555-5555-4444')).toBe('Mastercard');
    expect(cardNumber('378282246310005')).toBe('American Express');
    for (const v of ['4111111111111112', '1767225600000', '0000000000000000', '+44 20 7946 0958', '12345678901234', '9111111111111111', '4111 1111 1111 111']) expect(cardNumber(v), v).toBeUndefined();
  });

  it('masks keep a few characters and the length', () => {
    expect(mask(`AKIA${'Q'.repeat(12)}WXYZ`)).toBe('AKIA…WXYZ (20 characters)');
    expect(mask('Cobol-1959')).toBe('Co…59 (10 characters)');
    expect(mask('hunter2')).toBe('h… (7 characters)');
  });
});

describe('hostile bodies', () => {
  // Before: `^\s*at …` (the `m` flag, `\s` matching newlines) rescanned the rest of the text from every
  // line start, 167 s for one 256 KiB body of newlines; `<h2[^>]*>`, `SQLITE_\w+: `, the Python
  // traceback's `\s*\n\s+`, PHP's `Stack trace:\s*\n`, Apache's `(?:\.\d+)+[^<]*` and the PEM body
  // were quadratic or worse too. Measured here after the fix: 196 bodies (and their readable text)
  // in about 1 s, the slowest (escaped newlines in JSON, read twice) about 40 ms.
  it('super-linear regexes: every signature over 256 KiB hostile bodies (newlines only, each prefix repeated…) within 4 s in all, 400 ms a body', () => {
    const bodies = hostileBodies(256 * 1024);
    expect(bodies.length).toBeGreaterThan(150);
    let total = 0;
    for (const { name, body } of bodies) {
      const t0 = performance.now();
      const text = readableText(body);
      for (const t of text === body ? [body] : [body, text]) {
        sqlError(t);
        const trace = stackTrace(t);
        banners(t, 500);
        if (trace !== undefined) lineFrom(t, trace.index);
      }
      privateKeys(body);
      tokens(body);
      passwordHash(body);
      cardNumber(body);
      rawIndex(body, text.slice(0, 100));
      const ms = performance.now() - t0;
      total += ms;
      expect(ms, name).toBeLessThan(400);
    }
    expect(total).toBeLessThan(4000);
  });

  it('the bounded signatures still recognise what they did', () => {
    expect(stackTrace('Traceback (most recent call last):\r\n  File "/app/main.py", line 12, in <module>')?.label).toBe('Python');
    expect(stackTrace('Error: boom\r\n    at a (/srv/x.js:1:2)\r\n    at b (/srv/y.js:3:4)\r\n')?.label).toBe('Node.js');
    expect(stackTrace('System.InvalidOperationException: x\r\n   at Api.Notes.Get(Int32 id)\r\n   at Api.Program.Main()\r\n')?.label).toBe('.NET');
    expect(stackTrace("Stack trace:\n#0 /var/www/index.php(3): foo()\n#1 {main}")?.label).toBe('PHP');
    expect(sqlError('SQLITE_CONSTRAINT_UNIQUE: UNIQUE constraint failed')?.label).toBe('SQLite');
    expect(banners('<h2 style="margin-top: 30px">Rails.root: /app</h2>', 500)).toMatchObject([{ label: 'Rails exception page' }]);
    expect(banners('<address>Apache/2.4.41 (Ubuntu) Server at api.example Port 80</address>', 404)).toMatchObject([{ label: 'Apache httpd' }]);
    const key = (kind: string) => `-----BEGIN ${kind}-----\n${'MIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n'.repeat(3)}-----END ${kind}-----`;
    expect(privateKeys(`${key('RSA PRIVATE KEY')} and ${key('PRIVATE KEY')}`).map((k) => k.label)).toEqual(['PEM RSA PRIVATE KEY', 'PEM PRIVATE KEY']);
    expect(privateKeys(`-----BEGIN PRIVATE KEY----- example ${key('PRIVATE KEY')}`)).toMatchObject([{ index: 36 }]); // a header alone, then a key
    expect(privateKeys(key('PRIVATE KEY').replace('-----END PRIVATE KEY-----', '-----END RSA PRIVATE KEY-----'))).toEqual([]);
  });
});
