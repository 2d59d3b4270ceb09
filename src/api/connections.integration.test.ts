import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { useTestDatabase } from '../../test/helpers/database.ts';
import { newIdempotencyKey, openTestLedger, type TestLedger } from '../../test/helpers/ledger.ts';
import {
  expectProblem,
  registerMember,
  tenantFingerprint,
  uniquePhone,
  type ResponseLike,
} from '../../test/helpers/api.ts';

/**
 * What the server answers on a real connection, where inject cannot reach: a request that is never
 * received in full, bytes that are not HTTP, and requests that arrive while the server shuts down. Every
 * answer is problem+json.
 */

const database = useTestDatabase();
/** Short, so a stalled request times out within the test; Node checks for it once a second. */
const REQUEST_TIMEOUT_MS = 300;
const store = 'store-1';
let ledger: TestLedger;
let pos: string;
let port: number;

beforeAll(async () => {
  ledger = await openTestLedger(database.current, { requestTimeoutMs: REQUEST_TIMEOUT_MS });
  await ledger.createTenant('acme');
  pos = await ledger.key('acme', 'pos', [store]);
  await ledger.app.listen({ port: 0, host: '127.0.0.1' });
  port = (ledger.app.server.address() as AddressInfo).port;
});
afterAll(async () => ledger.close());

/** An open connection and everything the server sends on it until it closes the connection. */
function openConnection(toPort: number): { socket: Socket; response: Promise<ResponseLike> } {
  const socket = connect(toPort, '127.0.0.1');
  const response = new Promise<ResponseLike>((resolve, reject) => {
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => resolve(parseResponse(Buffer.concat(chunks).toString('utf8'))));
  });
  return { socket, response };
}

/** One HTTP/1.1 response as read off the wire. */
function parseResponse(text: string): ResponseLike {
  const headEnd = text.indexOf('\r\n\r\n');
  expect(headEnd, `no complete response in ${JSON.stringify(text)}`).toBeGreaterThan(0);
  const [statusLine = '', ...headerLines] = text.slice(0, headEnd).split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of headerLines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
  }
  const body = text.slice(headEnd + 4);
  expect(Buffer.byteLength(body)).toBe(Number(headers['content-length']));
  return {
    statusCode: Number(/^HTTP\/1\.1 (\d{3}) /.exec(statusLine)?.[1]),
    headers,
    body,
    json: () => JSON.parse(body),
  };
}

function postHead(path: string, key: string, contentLength: number): string {
  return [
    `POST ${path} HTTP/1.1`,
    'Host: ledger.test',
    `Authorization: Bearer ${key}`,
    `Idempotency-Key: ${newIdempotencyKey()}`,
    'Content-Type: application/json',
    `Content-Length: ${contentLength}`,
    '',
    '',
  ].join('\r\n');
}

describe('a request not received in full within the request timeout', () => {
  it('answers 408 request-timeout as problem+json to headers that trickle in and never end', async () => {
    const { socket, response } = openConnection(port);
    const started = Date.now();
    socket.write('POST /v1/members HTTP/1.1\r\nHost: ledger.test\r\n');
    // A header every 50 ms keeps the connection busy, but the headers never end.
    let line = 0;
    const trickle = setInterval(() => {
      line += 1;
      if (socket.writable) socket.write(`X-Slow-${line}: ${line}\r\n`);
    }, 50);
    try {
      const answer = await response;
      const problem = expectProblem(answer, 408, 'request-timeout');
      expect(problem['detail']).toContain(`${REQUEST_TIMEOUT_MS} ms`);
      expect(answer.headers['connection']).toBe('close');
      expect(Date.now() - started).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS);
    } finally {
      clearInterval(trickle);
    }
  });

  it('answers 408 request-timeout to a body that stops short of its Content-Length, changing nothing', async () => {
    const memberId = await registerMember(ledger, pos, store);
    const before = await tenantFingerprint(database.current.pool, 'acme');
    const body = JSON.stringify({ orderId: 'order-1', storeId: store, points: 1 });
    const { socket, response } = openConnection(port);
    socket.write(postHead(`/v1/members/${memberId}/redemptions`, pos, body.length));
    socket.write(body.slice(0, 10));
    expectProblem(await response, 408, 'request-timeout');
    expect(await tenantFingerprint(database.current.pool, 'acme')).toBe(before);
  });
});

describe('requests that are not HTTP the server can read', () => {
  it('answers 400 validation-failed as problem+json to bytes that are not HTTP', async () => {
    const { socket, response } = openConnection(port);
    socket.write('HELLO THERE\r\n\r\n');
    const problem = expectProblem(await response, 400, 'validation-failed');
    expect(problem.errors).toEqual([{ path: 'request', message: 'malformed HTTP' }]);
  });

  it("answers 431 request-headers-too-large as problem+json to headers past Node's limit", async () => {
    const { socket, response } = openConnection(port);
    socket.write(`GET /healthz HTTP/1.1\r\nHost: ledger.test\r\nX-Big: ${'x'.repeat(20_000)}\r\n\r\n`);
    expectProblem(await response, 431, 'request-headers-too-large');
  });
});

describe('graceful shutdown', () => {
  it('answers a request that arrives once close has begun 503 service-unavailable as problem+json, changing nothing', async () => {
    const closing = await openTestLedger(database.current);
    await closing.app.listen({ port: 0, host: '127.0.0.1' });
    const before = await tenantFingerprint(database.current.pool, 'acme');
    const accepted = new Promise<Socket>((resolve) => closing.app.server.once('connection', resolve));
    const { socket, response } = openConnection((closing.app.server.address() as AddressInfo).port);
    const body = JSON.stringify({
      memberId: randomUUID(),
      phone: uniquePhone(),
      storeId: store,
      channel: 'store',
    });
    const head = postHead('/v1/members', pos, body.length);
    // A connection whose request has begun is not idle, so close() waits for it rather than cut it.
    const begun = head.slice(0, 20);
    socket.write(begun);
    const serverSide = await accepted;
    await vi.waitFor(() => expect(serverSide.bytesRead).toBe(begun.length));

    const closed = closing.app.close();
    // The listening socket is closed once close() has begun its shutdown.
    await vi.waitFor(() => expect(closing.app.server.listening).toBe(false));
    socket.write(head.slice(20) + body);
    const answer = await response;
    expectProblem(answer, 503, 'service-unavailable');
    expect(answer.headers['connection']).toBe('close');
    await closed;
    await closing.runtime.close();
    expect(await tenantFingerprint(database.current.pool, 'acme')).toBe(before);
  });
});
