import { createHash, randomUUID } from 'node:crypto';
import type { LightMyRequestResponse } from 'fastify';
import type { RowDataPacket } from 'mysql2/promise';
import { expect } from 'vitest';
import type { Pool } from '../../src/db/pool.ts';
import { post, type TestLedger } from './ledger.ts';

/**
 * Shared by the API's integration tests (src/api/*.integration.test.ts): what every problem must look
 * like, a fingerprint of everything a tenant's commands write (to prove a rejected or replayed request
 * changed nothing), and the few steps most tests begin with.
 */

export const PROBLEM_CONTENT_TYPE = /^application\/problem\+json/;

/** Internals that must never reach a client: stack frames, source paths, driver errors. */
export const INTERNALS_PATTERNS = [
  /\bat \S+ \(/,
  /\.ts:\d+/,
  /node_modules/,
  /\bER_[A-Z_]+/,
  /You have an error in your SQL syntax/i,
  /"stack"/,
];
/** SQL text; checked where the request itself carried none (a problem may echo a caller's id). */
const SQL_PATTERNS = [
  /\bSELECT\b.*\bFROM\b/i,
  /\bINSERT INTO\b/i,
  /\bUPDATE \w+ SET\b/i,
  /\bWHERE tenant_id\b/i,
];

/** What expectProblem reads of a response: an injected one, or one read off a raw socket. */
export type ResponseLike = Pick<LightMyRequestResponse, 'statusCode' | 'headers' | 'body' | 'json'>;

/** The response is RFC 9457 problem+json with the contract's fields, and leaks no internals. */
export function expectProblem(
  response: ResponseLike,
  status: number,
  code?: string,
): Record<string, unknown> & { errors?: { path: string; message: string }[] } {
  expect(response.statusCode, response.body).toBe(status);
  expect(response.headers['content-type']).toMatch(PROBLEM_CONTENT_TYPE);
  const body = response.json() as Record<string, unknown>;
  expect(typeof body['type']).toBe('string');
  expect(typeof body['title']).toBe('string');
  expect(body['status']).toBe(status);
  expect(typeof body['detail']).toBe('string');
  expect(typeof body['code']).toBe('string');
  if (code !== undefined) expect(body['code']).toBe(code);
  expectNoLeak(response.body);
  return body;
}

export function expectNoLeak(text: string, options: { sql?: boolean } = {}): void {
  const patterns = options.sql === false ? INTERNALS_PATTERNS : [...INTERNALS_PATTERNS, ...SQL_PATTERNS];
  for (const pattern of patterns) expect(text, `response leaks ${pattern}`).not.toMatch(pattern);
}

/** The offending fields of a validation-failed problem, each once, sorted (a field may fail several rules). */
export function offendingPaths(response: LightMyRequestResponse): string[] {
  const body = expectProblem(response, 400, 'validation-failed');
  expect(Array.isArray(body.errors)).toBe(true);
  expect(body.errors?.length).toBeGreaterThan(0);
  for (const error of body.errors ?? []) expect(typeof error.message).toBe('string');
  return [...new Set((body.errors ?? []).map((error) => error.path))].sort();
}

/** Every table a member command writes, with its key order, scoped to the tenant. */
/**
 * What a command can change. A refusal's own command row (event_count 0: the answer kept under its
 * Idempotency-Key so every attempt gets it) records the answer, not a change to the ledger; it is left out.
 */
const TENANT_TABLES: readonly { table: string; orderBy: string; where?: string }[] = [
  { table: 'events', orderBy: 'partition_no, position' },
  { table: 'streams', orderBy: 'stream_id' },
  { table: 'log_partitions', orderBy: 'partition_no' },
  { table: 'commands', orderBy: 'command_id', where: 'event_count > 0' },
  { table: 'unique_keys', orderBy: 'unique_key' },
];

/** A digest of everything the tenant's commands have written: equal digests mean nothing changed. */
export async function tenantFingerprint(pool: Pool, tenantId: string): Promise<string> {
  const hash = createHash('sha256');
  for (const { table, orderBy, where } of TENANT_TABLES) {
    const [rows] = await pool.query<RowDataPacket[]>(
      `SELECT * FROM ${table} WHERE tenant_id = ?${where === undefined ? '' : ` AND ${where}`} ORDER BY ${orderBy}`,
      [tenantId],
    );
    hash.update(table).update(JSON.stringify(rows));
  }
  return hash.digest('hex');
}

export async function eventCount(pool: Pool, tenantId: string): Promise<number> {
  const [rows] = await pool.query<RowDataPacket[]>('SELECT COUNT(*) AS n FROM events WHERE tenant_id = ?', [
    tenantId,
  ]);
  return Number(rows[0]?.['n']);
}

let phoneCounter = 0;
/** A mainland mobile number no other call in this process returns. */
export function uniquePhone(): string {
  phoneCounter += 1;
  return `139${String(process.pid % 10_000).padStart(4, '0')}${String(phoneCounter).padStart(4, '0')}`;
}

export function uniqueId(prefix: string): string {
  return `${prefix}-${randomUUID()}`;
}

export async function registerMember(
  ledger: TestLedger,
  key: string,
  storeId: string,
  memberId: string = randomUUID(),
): Promise<string> {
  const response = await post(ledger.app, key, '/v1/members', {
    memberId,
    phone: uniquePhone(),
    storeId,
    channel: 'store',
  });
  expect(response.statusCode, response.body).toBe(201);
  return memberId;
}

/** Records a purchase of `amountFen` (one line, no insurance): the default programme earns amountFen / 100 points. */
export async function purchase(
  ledger: TestLedger,
  key: string,
  memberId: string,
  storeId: string,
  amountFen: number,
  orderId: string = uniqueId('order'),
): Promise<LightMyRequestResponse> {
  const response = await post(ledger.app, key, `/v1/members/${memberId}/purchases`, {
    orderId,
    storeId,
    lines: [{ sku: 'sku-1', category: 'otc', quantity: 1, amountFen }],
  });
  expect(response.statusCode, response.body).toBe(201);
  return response;
}

/** The replay is the first response again: status, content type and the very same bytes of body. */
export function expectReplayOf(replay: LightMyRequestResponse, first: LightMyRequestResponse): void {
  expect(first.headers['idempotent-replayed']).toBeUndefined();
  expect(replay.statusCode).toBe(first.statusCode);
  expect(replay.headers['idempotent-replayed']).toBe('true');
  expect(replay.headers['content-type']).toBe(first.headers['content-type']);
  expect(replay.body).toBe(first.body);
}
