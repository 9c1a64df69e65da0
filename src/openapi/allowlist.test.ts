import { describe, expect, it } from 'vitest';
import { parseOpenApi } from './document.js';
import { compileApi } from './compile.js';
import { applyPlan } from './allowlist.js';

const SPEC = `openapi: 3.1.0
info: { title: t, version: '1' }
paths:
  /a:
    get:
      responses:
        '200':
          description: ok
          content:
            application/json:
              schema: { $ref: '#/components/schemas/Page' }
components:
  schemas:
    Page:
      type: object
      properties:
        items: { type: array, items: { $ref: '#/components/schemas/Node' } }
        meta: { type: object, additionalProperties: true }
        counts: { type: object, additionalProperties: { type: object, properties: { n: { type: integer } } } }
        shape: { oneOf: [{ $ref: '#/components/schemas/Circle' }, { $ref: '#/components/schemas/Square' }] }
        bare: { type: object }
        anything: {}
    Node:
      allOf:
        - type: object
          properties:
            id: { type: string }
            secret: { type: string, writeOnly: true }
        - type: object
          properties:
            children: { type: array, items: { $ref: '#/components/schemas/Node' } }
    Circle: { type: object, properties: { r: { type: number } } }
    Square: { type: object, properties: { side: { type: number } } }
`;

function plan() {
  const api = compileApi(parseOpenApi(SPEC, 's.yaml'));
  return api.match('GET', '/a')!.operation.responses.get('200')!.content![0]!.plan;
}

describe('response allowlist plans', () => {
  it('removes undeclared and writeOnly properties at any depth, through allOf, oneOf and recursion', () => {
    const body = {
      items: [{ id: '1', secret: 's', internalNotes: 'x', children: [{ id: '2', children: [{ id: '3', passwordHash: 'h' }] }] }],
      meta: { free: { form: true } },
      counts: { a: { n: 1, leak: true } },
      shape: { r: 1, side: 2, hidden: 3 },
      bare: { anything: 1 },
      anything: { kept: { whole: true } },
      debug: { sql: 'select' },
    };
    const removed = applyPlan(body, plan());
    expect(body).toEqual({
      items: [{ id: '1', children: [{ id: '2', children: [{ id: '3' }] }] }],
      meta: { free: { form: true } },
      counts: { a: { n: 1 } },
      shape: { r: 1, side: 2 },
      bare: {},
      // `{}` says nothing about objects: like an object schema without properties, it declares none.
      anything: {},
    });
    expect(removed?.count).toBe(8);
    expect(removed?.paths.sort()).toEqual(['$.bare.anything', '$.counts.a.leak', '$.debug', '$.items[0].children[0].children[0].passwordHash', '$.items[0].internalNotes', '$.items[0].secret', '$.shape.hidden', '$.anything.kept'].sort());
  });

  it('reports nothing and changes nothing when the answer is as declared', () => {
    const body = { items: [{ id: '1', children: [] }], meta: {} };
    expect(applyPlan(body, plan())).toBeUndefined();
    expect(body).toEqual({ items: [{ id: '1', children: [] }], meta: {} });
  });

  it('handles a very deep answer without recursion', () => {
    let deep: Record<string, unknown> = { id: 'leaf', junk: 1 };
    for (let i = 0; i < 50_000; i++) deep = { id: String(i), children: [deep] };
    const removed = applyPlan({ items: [deep] }, plan());
    expect(removed?.count).toBe(1);
  });
});
