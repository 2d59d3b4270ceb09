import {
  StreamDeletedError,
  UnavailableError,
  WrongExpectedVersionError,
  type AllStreamResolvedEvent,
  type EventStoreDBClient,
  type ResolvedEvent,
} from '@eventstore/db-client';
// The client's own stream classes, fed by fake gRPC streams: the wrapper is tested against the code that will run.
import { ReadStream } from '@eventstore/db-client/dist/streams/utils/ReadStream.js';
import { Subscription } from '@eventstore/db-client/dist/streams/utils/Subscription.js';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ClientEsdbLog, EsdbUnknownOutcomeError } from './esdb-log.ts';

/**
 * ClientEsdbLog without a server: a stub client whose reads return the client's real ReadStream and Subscription,
 * driven by scripted gRPC responses. What this cannot show is what a real server sends; docs/eventstore-esdb.md.
 */

type Response = Record<string, () => unknown>;

class FakeGrpcStream extends PassThrough {
  cancelled = false;
  constructor() {
    super({ objectMode: true });
  }
  cancel(): void {
    this.cancelled = true;
    this.end();
  }
}

const eventResponse = (resolved: unknown): Response => ({ hasEvent: () => true, getEvent: () => resolved });
const caughtUp: Response = { hasCaughtUp: () => true };
const confirmation: Response = {
  hasConfirmation: () => true,
  getConfirmation: () => ({ getSubscriptionId: () => 'sub-1' }),
};

function recorded(streamName: string, revision: bigint, position: bigint): AllStreamResolvedEvent {
  return {
    event: {
      streamId: streamName,
      id: `00000000-0000-4000-8000-${String(revision).padStart(12, '0')}`,
      isJson: true,
      revision,
      type: 'Thing',
      created: new Date(0),
      data: { revision: Number(revision) },
      metadata: { tenantId: 'acme', recordedAt: '2026-03-01T08:00:00.000Z', streamHash: 'a'.repeat(64) },
      position: { commit: position, prepare: position },
    },
    commitPosition: position,
  };
}

function subscriptionOver(grpc: FakeGrpcStream): Subscription<AllStreamResolvedEvent> {
  return new Subscription<AllStreamResolvedEvent>(
    async () => grpc as never,
    (resolved) => resolved as unknown as AllStreamResolvedEvent,
    {},
  );
}

function readStreamOver(grpc: FakeGrpcStream): ReadStream<ResolvedEvent> {
  return new ReadStream<ResolvedEvent>(
    async () => grpc as never,
    (resolved) => resolved as unknown as ResolvedEvent,
    {},
  );
}

interface Calls {
  subscribe: unknown[];
  read: unknown[];
  append: unknown[];
}

function stubClient(script: {
  subscription?: () => Subscription<AllStreamResolvedEvent>;
  read?: () => ReadStream<ResolvedEvent>;
  append?: () => Promise<unknown>;
}): { client: EventStoreDBClient; calls: Calls } {
  const calls: Calls = { subscribe: [], read: [], append: [] };
  const client = {
    subscribeToAll: (options: unknown) => {
      calls.subscribe.push(options);
      return script.subscription!();
    },
    readStream: (streamName: string, options: unknown) => {
      calls.read.push([streamName, options]);
      return script.read!();
    },
    appendToStream: (streamName: string, events: unknown, options: unknown) => {
      calls.append.push([streamName, events, options]);
      return script.append!();
    },
    dispose: async () => undefined,
  };
  return { client: client as unknown as EventStoreDBClient, calls };
}

describe('ClientEsdbLog.readAllAfter (catch-up subscription)', () => {
  it.each([5, 40])(
    'takes all %i events sent before CaughtUp, even those still buffered when it arrives',
    async (count) => {
      const grpc = new FakeGrpcStream();
      const { client, calls } = stubClient({ subscription: () => subscriptionOver(grpc) });
      const log = new ClientEsdbLog(client, { logReadDeadlineMs: 2_000 });
      const reading = log.readAllAfter('ledger-acme.', { commit: 500n, prepare: 500n }, 100);
      // All in one turn. Below the stream's high-water mark (16) 'caughtUp' is emitted before any event reaches a
      // reader; above it, backpressure holds CaughtUp back until the reader has taken some.
      grpc.write(confirmation);
      for (let i = 0; i < count; i++)
        grpc.write(eventResponse(recorded('ledger-acme.s', BigInt(i), BigInt(1000 + i))));
      grpc.write(caughtUp);
      const events = await reading;
      expect(events.map((e) => e.revision)).toEqual(Array.from({ length: count }, (_, i) => BigInt(i)));
      expect(events[0]).toMatchObject({
        streamName: 'ledger-acme.s',
        isJson: true,
        position: { commit: 1000n, prepare: 1000n },
      });
      expect(calls.subscribe[0]).toMatchObject({
        fromPosition: { commit: 500n, prepare: 500n },
        filter: { filterOn: 'streamName', prefixes: ['ledger-acme.'] },
      });
      await new Promise((resolve) => setImmediate(resolve));
      expect(grpc.cancelled).toBe(true);
    },
  );

  it('reads from the start for position 0 and stops at the limit', async () => {
    const grpc = new FakeGrpcStream();
    const { client, calls } = stubClient({ subscription: () => subscriptionOver(grpc) });
    const reading = new ClientEsdbLog(client).readAllAfter('ledger-acme.', { commit: 0n, prepare: 0n }, 2);
    for (let i = 0; i < 5; i++)
      grpc.write(eventResponse(recorded('ledger-acme.s', BigInt(i), BigInt(1000 + i))));
    expect((await reading).map((e) => e.revision)).toEqual([0n, 1n]);
    expect(calls.subscribe[0]).toMatchObject({ fromPosition: 'start' });
  });

  it('returns what it has at the deadline, and fails rather than answer "nothing" without CaughtUp', async () => {
    const some = new FakeGrpcStream();
    const withEvents = new ClientEsdbLog(stubClient({ subscription: () => subscriptionOver(some) }).client, {
      logReadDeadlineMs: 100,
    });
    const reading = withEvents.readAllAfter('ledger-acme.', { commit: 1n, prepare: 1n }, 10);
    some.write(eventResponse(recorded('ledger-acme.s', 0n, 1000n)));
    expect(await reading).toHaveLength(1);

    const none = new FakeGrpcStream();
    const empty = new ClientEsdbLog(stubClient({ subscription: () => subscriptionOver(none) }).client, {
      logReadDeadlineMs: 100,
    });
    await expect(empty.readAllAfter('ledger-acme.', { commit: 1n, prepare: 1n }, 10)).rejects.toThrow(
      /did not catch up/,
    );
  });

  it('passes a failed subscription on as an error', async () => {
    const grpc = new FakeGrpcStream();
    const log = new ClientEsdbLog(stubClient({ subscription: () => subscriptionOver(grpc) }).client, {
      logReadDeadlineMs: 2_000,
    });
    const reading = log.readAllAfter('ledger-acme.', { commit: 1n, prepare: 1n }, 10);
    grpc.destroy(new Error('connection reset'));
    await expect(reading).rejects.toThrow(/connection reset/);
  });
});

describe('ClientEsdbLog stream reads', () => {
  it('reads forwards and the last event backwards, with $all positions', async () => {
    const grpc = new FakeGrpcStream();
    const { client, calls } = stubClient({ read: () => readStreamOver(grpc) });
    const log = new ClientEsdbLog(client);
    const reading = log.readForward('ledger-acme.s', 3n, 2);
    grpc.write(eventResponse(recorded('ledger-acme.s', 3n, 1003n)));
    grpc.write(eventResponse(recorded('ledger-acme.s', 4n, 1004n)));
    grpc.end();
    expect((await reading).map((e) => [e.revision, e.position?.commit])).toEqual([
      [3n, 1003n],
      [4n, 1004n],
    ]);
    expect(calls.read[0]).toEqual([
      'ledger-acme.s',
      { fromRevision: 3n, maxCount: 2, direction: 'forwards' },
    ]);

    const last = new FakeGrpcStream();
    const tail = stubClient({ read: () => readStreamOver(last) });
    const lastReading = new ClientEsdbLog(tail.client).readLast('ledger-acme.s');
    last.write(eventResponse(recorded('ledger-acme.s', 9n, 1009n)));
    last.end();
    expect((await lastReading)?.revision).toBe(9n);
    expect(tail.calls.read[0]).toEqual([
      'ledger-acme.s',
      { fromRevision: 'end', maxCount: 1, direction: 'backwards' },
    ]);
  });

  it('reads a missing stream as empty', async () => {
    const grpc = new FakeGrpcStream();
    const log = new ClientEsdbLog(stubClient({ read: () => readStreamOver(grpc) }).client);
    const reading = log.readLast('ledger-acme.nothing');
    grpc.write({
      hasStreamNotFound: () => true,
      getStreamNotFound: () => ({
        getStreamIdentifier: () => ({ getStreamName: () => 'ledger-acme.nothing' }),
      }),
    });
    expect(await reading).toBeNull();
  });

  it('gives up on a read that hangs', async () => {
    const grpc = new FakeGrpcStream();
    const log = new ClientEsdbLog(stubClient({ read: () => readStreamOver(grpc) }).client, {
      streamReadDeadlineMs: 50,
    });
    await expect(log.readForward('ledger-acme.s', 0n, 1)).rejects.toThrow(/longer than 50 ms/);
  });
});

describe('ClientEsdbLog.append', () => {
  const events = [
    {
      eventId: '7b4f5c1e-2a3d-5e6f-8a9b-0c1d2e3f4a5b',
      type: 'Thing',
      data: { n: 1 },
      metadata: { tenantId: 'acme' },
    },
  ];

  it('appends JSON events with their ids at a concrete expected revision', async () => {
    const { client, calls } = stubClient({
      append: async () => ({
        success: true,
        nextExpectedRevision: 4n,
        position: { commit: 2000n, prepare: 2000n },
      }),
    });
    const outcome = await new ClientEsdbLog(client).append('ledger-acme.s', events, 3n);
    expect(outcome).toEqual({
      kind: 'appended',
      lastRevision: 4n,
      lastPosition: { commit: 2000n, prepare: 2000n },
    });
    const [streamName, sent, options] = calls.append[0] as [string, unknown[], unknown];
    expect(streamName).toBe('ledger-acme.s');
    expect(sent).toEqual([
      {
        id: events[0]!.eventId,
        contentType: 'application/json',
        type: 'Thing',
        data: { n: 1 },
        metadata: { tenantId: 'acme' },
      },
    ]);
    expect(options).toMatchObject({ expectedRevision: 3n });
  });

  it('tells a moved stream from an unknown outcome from a refusal', async () => {
    const wrongVersion = stubClient({
      append: async () => {
        throw new WrongExpectedVersionError(undefined, {
          streamName: 'ledger-acme.s',
          expected: 3n,
          current: 5n,
        });
      },
    });
    expect(await new ClientEsdbLog(wrongVersion.client).append('ledger-acme.s', events, 3n)).toEqual({
      kind: 'wrong-expected-revision',
    });

    const notThrown = stubClient({ append: async () => ({ success: false, nextExpectedRevision: -1n }) });
    expect(await new ClientEsdbLog(notThrown.client).append('ledger-acme.s', events, 3n)).toEqual({
      kind: 'wrong-expected-revision',
    });

    const unavailable = stubClient({
      append: async () => {
        throw new UnavailableError();
      },
    });
    const unknown = await new ClientEsdbLog(unavailable.client)
      .append('ledger-acme.s', events, 'no_stream')
      .catch((e: unknown) => e);
    expect(unknown).toBeInstanceOf(EsdbUnknownOutcomeError);
    expect((unknown as Error).cause).toBeInstanceOf(UnavailableError);

    const deleted = stubClient({
      append: async () => {
        throw StreamDeletedError.fromStreamName('ledger-acme.s');
      },
    });
    await expect(
      new ClientEsdbLog(deleted.client).append('ledger-acme.s', events, 3n),
    ).rejects.toBeInstanceOf(StreamDeletedError);
  });
});
