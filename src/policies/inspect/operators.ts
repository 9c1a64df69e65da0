/**
 * MongoDB query and expression operators refused as keys by `nosqlOperators`: the ones that change
 * what a filter matches when a request body or query is passed to `find()` / `updateOne()`
 * unchecked (`{"password": {"$ne": ""}}`), or that run code (`$where`, `$function`,
 * `$accumulator`). Deliberately left out because legitimate payloads use them: `$type` (.NET
 * System.Text.Json type discriminator), `$schema`, `$ref`, `$id`, `$comment` (JSON Schema),
 * `$oid`, `$date` (Extended JSON), `$filter`, `$search`, `$count` (OData query options).
 * `anyDollarKey: true` refuses those too.
 */
export const NOSQL_OPERATORS: ReadonlySet<string> = new Set([
  // comparison
  '$eq',
  '$ne',
  '$gt',
  '$gte',
  '$lt',
  '$lte',
  '$in',
  '$nin',
  // logical
  '$and',
  '$or',
  '$not',
  '$nor',
  // element, evaluation, array
  '$exists',
  '$regex',
  '$options',
  '$mod',
  '$text',
  '$all',
  '$size',
  '$elemMatch',
  '$jsonSchema',
  // run code or arbitrary expressions
  '$where',
  '$expr',
  '$function',
  '$accumulator',
]);
