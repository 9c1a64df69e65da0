import { describe, expect, it } from 'vitest';
import { ConfigError, formatIssue } from '../config/errors.js';
import { parseOpenApi } from './document.js';
import { compileApi } from './compile.js';

function problems(text: string): string[] {
  try {
    compileApi(parseOpenApi(text, 'spec.yaml'));
  } catch (error) {
    if (error instanceof ConfigError) return error.issues.map(formatIssue);
    throw error;
  }
  return [];
}

const HEAD = 'openapi: 3.1.0\ninfo: { title: t, version: "1" }\n';

describe('OpenAPI documents', () => {
  it('reads 3.0 and 3.1, YAML and JSON, and lists operations', () => {
    const yaml = parseOpenApi(`${HEAD}servers: [{ url: 'https://x.test/{v}/api', variables: { v: { default: v2 } } }]\npaths:\n  /a:\n    get: { responses: { '200': { description: ok } } }\n`, 's.yaml');
    expect(yaml.version).toBe('3.1');
    expect(yaml.serverPath).toBe('/v2/api');
    expect(yaml.operations.map((o) => `${o.method} ${o.template}`)).toEqual(['GET /a']);
    const json = parseOpenApi(JSON.stringify({ openapi: '3.0.3', info: { title: 't', version: '1' }, servers: [{ url: '/base/' }], paths: { '/b/{id}': { parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }], delete: { responses: {} } } } }), 's.json');
    expect(json.version).toBe('3.0');
    expect(json.serverPath).toBe('/base');
    expect(json.operations[0]!.parameters.map((p) => p.name)).toEqual(['id']);
  });

  it.each([
    ['no operations', `${HEAD}paths: {}\n`, 'spec.yaml:3:8: paths: the document has no operations: there is nothing to validate against'],
    ['no paths', `${HEAD}`, 'spec.yaml:1:1: expected `paths`, a mapping of path templates to operations'],
    ['Swagger 2.0', 'swagger: "2.0"\ninfo: {}\npaths: {}\n', 'spec.yaml:1:10: swagger: Swagger 2.0 is not supported: convert the document to OpenAPI 3 (for example with swagger2openapi)'],
    ['an unknown version', 'openapi: 4.0.0\npaths: {}\n', 'spec.yaml:1:10: openapi: expected `openapi: 3.0.x` or `openapi: 3.1.x`, found "4.0.0"'],
    ['a dangling $ref', `${HEAD}paths:\n  /a:\n    get:\n      parameters:\n        - $ref: '#/components/parameters/Nope'\n      responses: {}\n`, "spec.yaml:7:17: paths[\"/a\"].get.parameters[0].$ref: the reference '#/components/parameters/Nope' points at nothing in this document"],
    ['a remote $ref', `${HEAD}paths:\n  /a:\n    post:\n      requestBody:\n        content:\n          application/json:\n            schema: { $ref: 'other.yaml#/Pet' }\n      responses: {}\n`, "spec.yaml:9:29: paths[\"/a\"].post.requestBody.content[\"application/json\"].schema.$ref: only local references (#/…) are supported, not 'other.yaml#/Pet'"],
    ['an undeclared path parameter', `${HEAD}paths:\n  /a/{id}:\n    get: { responses: {} }\n`, "spec.yaml:5:10: paths[\"/a/{id}\"].get: the path parameter '{id}' of '/a/{id}' is not declared in `parameters`"],
    ['a path parameter not required', `${HEAD}paths:\n  /a/{id}:\n    get:\n      parameters: [{ name: id, in: path, schema: { type: string } }]\n      responses: {}\n`, "spec.yaml:6:20: paths[\"/a/{id}\"].get.parameters[0]: the path parameter 'id' must say `required: true`"],
    ['a bad style', `${HEAD}paths:\n  /a:\n    get:\n      parameters: [{ name: q, in: query, style: matrix, schema: { type: string } }]\n      responses: {}\n`, "spec.yaml:6:49: paths[\"/a\"].get.parameters[0].style: style 'matrix' is not valid for a query parameter (expected form, spaceDelimited, pipeDelimited, deepObject)"],
    ['a circular parameter $ref', `${HEAD}paths:\n  /a:\n    get:\n      parameters: [{ $ref: '#/components/parameters/A' }]\n      responses: {}\ncomponents:\n  parameters:\n    A: { $ref: '#/components/parameters/B' }\n    B: { $ref: '#/components/parameters/A' }\n`, "spec.yaml:11:16: components.parameters.B.$ref: the reference '#/components/parameters/A' is circular"],
    ['YAML syntax', `${HEAD}paths:\n  /a: [\n`, 'spec.yaml:5:1:'],
    ['an invalid pattern', `${HEAD}paths:\n  /a:\n    post:\n      requestBody:\n        content:\n          application/json:\n            schema: { type: string, pattern: '(' }\n      responses: {}\n`, 'spec.yaml:9:21: paths["/a"].post.requestBody.content["application/json"].schema: the schema cannot be compiled:'],
  ])('refuses %s with file, line and column', (_name, text, expected) => {
    const found = problems(text);
    expect(found.length, found.join('\n')).toBeGreaterThan(0);
    expect(found.some((f) => f.startsWith(expected)), found.join('\n')).toBe(true);
  });

  it('3.1: type lists, numeric exclusive bounds, $ref siblings and an explicitly open object', () => {
    const api = compileApi(
      parseOpenApi(
        `${HEAD}paths:\n  /a:\n    post:\n      requestBody:\n        content:\n          application/json:\n            schema:\n              type: object\n              properties:\n                n: { type: [integer, 'null'], exclusiveMinimum: 0 }\n                meta: { type: object, additionalProperties: true }\n                ref: { $ref: '#/components/schemas/S', maxLength: 3 }\n      responses: {}\ncomponents:\n  schemas:\n    S: { type: string }\n`,
        's.yaml',
      ),
    );
    const validate = api.match('POST', '/a')!.operation.body!.media[0]!.json!;
    expect(validate({ n: null, meta: { anything: { goes: 1 } }, ref: 'abc' })).toBe(true);
    expect(validate({ n: 0 })).toBe(false);
    expect(validate({ ref: 'abcd' })).toBe(false);
    expect(validate({ other: 1 })).toBe(false);
  });

  it('3.0: nullable, and $ref siblings ignored', () => {
    const api = compileApi(
      parseOpenApi(
        "openapi: 3.0.3\ninfo: { title: t, version: '1' }\npaths:\n  /a:\n    post:\n      requestBody:\n        content:\n          application/json:\n            schema:\n              type: object\n              properties:\n                tag: { type: string, nullable: true, enum: [a, b] }\n                ref: { $ref: '#/components/schemas/S', maxLength: 1 }\n      responses: {}\ncomponents:\n  schemas:\n    S: { type: string }\n",
        's.yaml',
      ),
    );
    const validate = api.match('POST', '/a')!.operation.body!.media[0]!.json!;
    expect(validate({ tag: null, ref: 'long enough' })).toBe(true);
    expect(validate({ tag: 'c' })).toBe(false);
  });
});
