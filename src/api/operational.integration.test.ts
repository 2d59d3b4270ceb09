import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, useTestDatabase } from '../../test/helpers/database.ts';
import { get, openTestLedger, post, type TestLedger } from '../../test/helpers/ledger.ts';
import { expectProblem, registerMember, uniqueId } from '../../test/helpers/api.ts';
import { withSchemaFromNewerBuild } from '../../test/helpers/schema.ts';

const database = useTestDatabase();
let ledger: TestLedger;
let pos: string;
const store = 'store-1';

beforeAll(async () => {
  ledger = await openTestLedger(database.current);
  await ledger.createTenant('acme');
  pos = await ledger.key('acme', 'pos', [store]);
});
afterAll(async () => ledger.close());

describe('GET /healthz and /readyz', () => {
  it('/healthz answers 200 without a key', async () => {
    const response = await ledger.app.inject({ method: 'GET', url: '/healthz' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ status: 'ok' });
  });

  it('/readyz answers 200 on a migrated database', async () => {
    const response = await ledger.app.inject({ method: 'GET', url: '/readyz' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ status: 'ready' });
  });

  it('/readyz stays 200 when a newer build has migrated the schema further (a rollout in progress)', async () => {
    await withSchemaFromNewerBuild(ledger.runtime.pool, async () => {
      expect((await ledger.app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
    });
  });

  it('/readyz answers 503 problem+json on a database without the schema, while /healthz stays 200', async () => {
    const bare = await createTestDatabase({ migrate: false });
    const unready = await openTestLedger(bare);
    try {
      expectProblem(await unready.app.inject({ method: 'GET', url: '/readyz' }), 503, 'service-unavailable');
      expect((await unready.app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    } finally {
      await unready.close();
      await bare.drop();
    }
  });
});

describe('GET /metrics', () => {
  /** name{labels} value, per the Prometheus text format. */
  const SAMPLE =
    /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? (-?[0-9.e+-]+|NaN|[+-]Inf)( \d+)?$/;

  it('is Prometheus text with request latency and command outcomes, labelled by route template', async () => {
    const memberId = await registerMember(ledger, pos, store);
    await post(ledger.app, pos, `/v1/members/${memberId}/redemptions`, {
      orderId: uniqueId('o'),
      storeId: store,
      points: 5,
    });
    await get(ledger.app, pos, `/v1/members/${memberId}`);

    const response = await ledger.app.inject({ method: 'GET', url: '/metrics' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    const lines = response.body.split('\n').filter((line) => line !== '');
    for (const line of lines) {
      if (line.startsWith('#')) expect(line).toMatch(/^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+$/);
      else expect(line).toMatch(SAMPLE);
    }
    expect(lines).toContain('# TYPE ledger_http_request_duration_seconds histogram');
    expect(lines).toContain('# TYPE ledger_command_outcomes_total counter');
    expect(response.body).toMatch(/^ledger_command_outcomes_total\{route="\/v1\/members",outcome="ok"\} 1$/m);
    expect(response.body).toMatch(
      /^ledger_command_outcomes_total\{route="\/v1\/members\/:memberId\/redemptions",outcome="insufficient-points"\} 1$/m,
    );
    expect(response.body).toMatch(
      /^ledger_http_request_duration_seconds_count\{method="GET",route="\/v1\/members\/:memberId",status="200"\} 1$/m,
    );
    // Route templates, never raw paths: ids would make one series per member.
    expect(response.body).not.toContain(memberId);
  });

  it("shows the event store's append transactions: how many appends each gathered, and how long each took", async () => {
    const sample = (body: string, name: string): number => {
      const match = new RegExp(`^${name} (\\S+)$`, 'm').exec(body);
      expect(match, name).not.toBeNull();
      return Number(match![1]);
    };
    const read = async () => (await ledger.app.inject({ method: 'GET', url: '/metrics' })).body;
    const before = await read();
    const memberId = await registerMember(ledger, pos, store);
    const registered = await read();
    // Its next command appends on the heads this process's commit left: one round trip.
    const purchase = await post(ledger.app, pos, `/v1/members/${memberId}/purchases`, {
      orderId: uniqueId('o'),
      storeId: store,
      lines: [{ sku: 'sku-1', category: 'otc', quantity: 1, amountFen: 5_000 }],
    });
    expect(purchase.statusCode).toBe(201);
    const purchased = await read();
    const known = (body: string) =>
      body.includes('round_trips="1"')
        ? sample(body, 'ledger_append_transaction_duration_seconds_count\\{round_trips="1"\\}')
        : 0;
    expect(known(purchased)).toBe(known(registered) + 1);
    expect(registered).toContain('# TYPE ledger_append_batch_requests histogram');
    expect(registered).toContain('# TYPE ledger_append_transaction_duration_seconds histogram');
    const transactions = (body: string) => sample(body, 'ledger_append_batch_requests_count');
    expect(transactions(registered)).toBe(transactions(before) + 1);
    expect(sample(registered, 'ledger_append_batch_requests_sum')).toBe(
      sample(before, 'ledger_append_batch_requests_sum') + 1,
    );
    // A new member's first append reads its heads under lock: two round trips.
    const locking = (body: string) =>
      sample(body, 'ledger_append_transaction_duration_seconds_count\\{round_trips="2"\\}');
    expect(locking(registered)).toBe(locking(before) + 1);
    expect(
      sample(registered, 'ledger_append_transaction_duration_seconds_sum\\{round_trips="2"\\}'),
    ).toBeGreaterThan(sample(before, 'ledger_append_transaction_duration_seconds_sum\\{round_trips="2"\\}'));
  });

  it('does not need a key', async () => {
    expect(
      (
        await ledger.app.inject({
          method: 'GET',
          url: '/metrics',
          headers: { authorization: 'Bearer nonsense' },
        })
      ).statusCode,
    ).toBe(200);
  });
});

describe('request logging', () => {
  it('writes one line per request, with the route template and never the query string', async () => {
    const lines: string[] = [];
    const logged = await openTestLedger(database.current, {
      logStream: { write: (line) => lines.push(line) },
    });
    try {
      const key = await logged.key('acme', 'pos', [store]);
      const phone = '13912345678';
      const registered = await post(logged.app, key, '/v1/members', {
        memberId: randomUUID(),
        phone,
        storeId: store,
        channel: 'store',
      });
      expect(registered.statusCode, registered.body).toBe(201);
      const byPhone = await get(logged.app, key, `/v1/members?phone=${phone}`);
      expect(byPhone.statusCode, byPhone.body).toBe(200);
      const unknown = await get(logged.app, key, '/v1/no-such-route?phone=13900000000');
      expect(unknown.statusCode).toBe(404);

      const entries = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
      const completed = entries.filter((entry) => entry['msg'] === 'request completed');
      expect(completed).toHaveLength(3);
      expect(completed.map((entry) => [entry['method'], entry['route'], entry['statusCode']])).toEqual([
        ['POST', '/v1/members', 201],
        ['GET', '/v1/members', 200],
        ['GET', 'unknown', 404],
      ]);
      for (const entry of completed) {
        expect(typeof entry['reqId']).toBe('string');
        expect(typeof entry['responseTimeMs']).toBe('number');
      }
      expect(lines.filter((line) => /incoming request/.test(line))).toEqual([]);
      // No line carries the phone numbers or a raw URL with a query string.
      for (const line of lines) {
        expect(line).not.toMatch(/1391234|1390000|\?phone=/);
      }
    } finally {
      await logged.close();
    }
  });
});

describe('request logging of failures', () => {
  it("logs a database failure without the driver's copy of the statement, whose values hold the phone", async () => {
    const own = await createTestDatabase();
    const lines: string[] = [];
    const logged = await openTestLedger(own, { logStream: { write: (line) => lines.push(line) } });
    try {
      await logged.createTenant('acme');
      const key = await logged.key('acme', 'pos', [store]);
      // The phone lookup reads unique_keys with the phone in the WHERE clause; without the table it fails.
      await own.pool.query('RENAME TABLE unique_keys TO unique_keys_gone');
      const failed = await get(logged.app, key, '/v1/members?phone=13912345678');
      expectProblem(failed, 500, 'internal-error');

      const failure = lines
        .map((line) => JSON.parse(line) as { msg?: string; err?: Record<string, unknown> })
        .find((entry) => entry.msg === 'request failed');
      expect(failure?.err?.['code']).toBe('ER_NO_SUCH_TABLE');
      expect(failure?.err).not.toHaveProperty('sql');
      for (const line of lines) expect(line).not.toMatch(/1391234/);
    } finally {
      await logged.close();
      await own.drop();
    }
  });
});

describe('GET /openapi.json and /docs', () => {
  /** The /v1 routes of CONTRACT.md, as OpenAPI paths. */
  const CONTRACT_ROUTES = [
    ['post', '/v1/members', '201'],
    ['get', '/v1/members', '200'],
    ['get', '/v1/members/{memberId}', '200'],
    ['post', '/v1/members/{memberId}/purchases', '201'],
    ['post', '/v1/members/{memberId}/holds', '201'],
    ['post', '/v1/members/{memberId}/holds/{holdId}/capture', '200'],
    ['post', '/v1/members/{memberId}/holds/{holdId}/release', '200'],
    ['post', '/v1/members/{memberId}/redemptions', '201'],
    ['post', '/v1/members/{memberId}/refunds', '201'],
    ['post', '/v1/members/{memberId}/adjustments', '201'],
    ['get', '/v1/members/{memberId}/ledger', '200'],
    ['get', '/v1/members/{memberId}/balance', '200'],
  ] as const;

  type Json = Record<string, unknown>;
  let document: Json;

  beforeAll(async () => {
    const response = await ledger.app.inject({ method: 'GET', url: '/openapi.json' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^application\/json/);
    document = response.json();
  });

  it('is an OpenAPI 3 document', () => {
    expect(document['openapi']).toMatch(/^3\.\d+\.\d+$/);
    const info = document['info'] as Json;
    expect(typeof info['title']).toBe('string');
    expect(typeof info['version']).toBe('string');
    const paths = document['paths'] as Record<string, Record<string, Json>>;
    const methods = new Set(['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace']);
    for (const [path, item] of Object.entries(paths)) {
      expect(path.startsWith('/')).toBe(true);
      const templated = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
      for (const [method, operation] of Object.entries(item)) {
        if (method === 'parameters') continue;
        expect(methods.has(method), `${method} ${path}`).toBe(true);
        const responses = operation['responses'] as Record<string, Json>;
        expect(Object.keys(responses).length, `${method} ${path} has responses`).toBeGreaterThan(0);
        for (const [status, response] of Object.entries(responses)) {
          expect(status).toMatch(/^([1-5]\d\d|[1-5]XX|default)$/);
          expect(typeof response['description'], `${method} ${path} ${status} description`).toBe('string');
        }
        const parameters = (operation['parameters'] ?? []) as Json[];
        for (const parameter of parameters) {
          expect(['query', 'header', 'path', 'cookie']).toContain(parameter['in']);
          expect(typeof parameter['name']).toBe('string');
          if (parameter['in'] === 'path') expect(parameter['required']).toBe(true);
        }
        // Every {param} of the path is declared as a path parameter, and only those.
        const declared = parameters.filter((p) => p['in'] === 'path').map((p) => p['name']);
        expect(declared.sort(), `${method} ${path}`).toEqual([...templated].sort());
        const body = operation['requestBody'] as Json | undefined;
        if (body !== undefined) expect(Object.keys(body['content'] as Json).length).toBeGreaterThan(0);
      }
    }
    // Every $ref resolves inside the document.
    const refs = JSON.stringify(document).match(/"\$ref":"[^"]+"/g) ?? [];
    for (const ref of refs) {
      const pointer = ref.slice('"$ref":"#/'.length, -1).split('/');
      let node: unknown = document;
      for (const part of pointer) node = (node as Json)[part.replaceAll('~1', '/').replaceAll('~0', '~')];
      expect(node, ref).toBeDefined();
    }
  });

  it('lists every /v1 route of the contract with its success status, and declares bearer auth', () => {
    const paths = document['paths'] as Record<string, Record<string, Json>>;
    for (const [method, path, status] of CONTRACT_ROUTES) {
      const operation = paths[path]?.[method];
      expect(operation, `${method.toUpperCase()} ${path}`).toBeDefined();
      expect(Object.keys(operation!['responses'] as Json)).toContain(status);
      if (method === 'post') expect(operation!['requestBody'], `${path} documents its body`).toBeDefined();
    }
    const v1Operations = Object.entries(paths)
      .filter(([path]) => path.startsWith('/v1/'))
      .flatMap(([path, item]) => Object.keys(item).map((method) => `${method} ${path}`));
    expect(v1Operations.sort()).toEqual(CONTRACT_ROUTES.map(([method, path]) => `${method} ${path}`).sort());
    expect(document['security']).toEqual([{ bearer: [] }]);
  });

  /** The problems every command (POST) may answer, as CONTRACT.md and docs/api.md list them. */
  const COMMAND_PROBLEM_STATUSES = ['400', '401', '403', '404', '409', '413', '415', '429', '500'];
  /** Each POST route of the contract with the problems of its own: 422 where the programme may refuse. */
  const COMMAND_ROUTES = [
    ['/v1/members', []],
    ['/v1/members/{memberId}/purchases', []],
    ['/v1/members/{memberId}/holds', ['422']],
    ['/v1/members/{memberId}/holds/{holdId}/capture', ['422']],
    ['/v1/members/{memberId}/holds/{holdId}/release', []],
    ['/v1/members/{memberId}/redemptions', ['422']],
    ['/v1/members/{memberId}/refunds', ['422']],
    ['/v1/members/{memberId}/adjustments', ['422']],
  ] as const;

  /** A schema, or the component a `$ref` names. */
  function resolved(schema: Json): Json {
    const ref = schema['$ref'];
    if (typeof ref !== 'string') return schema;
    const name = ref.replace('#/components/schemas/', '');
    return ((document['components'] as Json)['schemas'] as Record<string, Json>)[name]!;
  }

  it('documents the Idempotency-Key header and the problems of every POST command route', () => {
    const paths = document['paths'] as Record<string, Record<string, Json>>;
    const v1Posts = Object.entries(paths)
      .filter(([path, item]) => path.startsWith('/v1/') && item['post'] !== undefined)
      .map(([path]) => path);
    expect(v1Posts.sort()).toEqual(COMMAND_ROUTES.map(([path]) => path).sort());
    for (const [path, ownStatuses] of COMMAND_ROUTES) {
      const operation = paths[path]!['post']!;
      const header = ((operation['parameters'] ?? []) as Json[]).find(
        (p) => p['in'] === 'header' && String(p['name']).toLowerCase() === 'idempotency-key',
      );
      expect(header, `${path} documents Idempotency-Key`).toMatchObject({
        required: true,
        schema: { type: 'string', minLength: 1, maxLength: 128 },
      });
      const responses = operation['responses'] as Record<string, Json>;
      const errorStatuses = Object.keys(responses).filter((status) => Number(status) >= 400);
      expect(errorStatuses.sort(), path).toEqual([...COMMAND_PROBLEM_STATUSES, ...ownStatuses].sort());
      for (const status of errorStatuses) {
        const content = responses[status]!['content'] as Record<string, Json>;
        expect(Object.keys(content), `${path} ${status}`).toEqual(['application/problem+json']);
        const schema = resolved(content['application/problem+json']!['schema'] as Json);
        expect(schema['required'], `${path} ${status}`).toEqual(
          expect.arrayContaining(['type', 'title', 'status', 'detail', 'code']),
        );
      }
    }
  });

  it('gives every response of every /v1 operation a schema', () => {
    const paths = document['paths'] as Record<string, Record<string, Json>>;
    for (const [path, item] of Object.entries(paths)) {
      if (!path.startsWith('/v1/')) continue;
      for (const [method, operation] of Object.entries(item)) {
        const responses = operation['responses'] as Record<string, Json>;
        if (method === 'get') {
          const errorStatuses = Object.keys(responses).filter((status) => Number(status) >= 400);
          expect(errorStatuses.sort(), `GET ${path}`).toEqual(['400', '401', '403', '404', '429', '500']);
        }
        for (const [status, response] of Object.entries(responses)) {
          const content = response['content'] as Record<string, Json> | undefined;
          expect(content, `${method} ${path} ${status}`).toBeDefined();
          for (const [mediaType, media] of Object.entries(content!)) {
            const schema = resolved(media['schema'] as Json);
            expect(schema?.['type'], `${method} ${path} ${status} ${mediaType}`).toBe('object');
          }
        }
      }
    }
  });

  it('documents the same limits the requests are validated with', () => {
    const paths = document['paths'] as Record<string, Record<string, Json>>;
    const holdBody = (
      ((paths['/v1/members/{memberId}/holds']!['post']!['requestBody'] as Json)['content'] as Json)[
        'application/json'
      ] as Json
    )['schema'] as Json;
    expect((holdBody['properties'] as Record<string, Json>)['ttlSeconds']).toMatchObject({
      type: 'integer',
      maximum: 3600,
    });
    const ledgerLimit = (paths['/v1/members/{memberId}/ledger']!['get']!['parameters'] as Json[]).find(
      (p) => p['name'] === 'limit',
    )!['schema'] as Json;
    expect(ledgerLimit['maximum']).toBe(500);
  });

  it('/docs answers with the API documentation page', async () => {
    const response = await ledger.app.inject({ method: 'GET', url: '/docs' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/html/);
    expect(response.body).toContain('swagger-ui');
  });
});
