import { ANY, NO_STREAM } from '@eventstore/db-client';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { derivedId, isUuid, newId } from '../../ids.ts';
import { GENESIS_HASH } from '../hash.ts';
import { EventStoreUsageError, type AppendRequest, type EventMetadata } from '../port.ts';
import { StreamChainVerifier } from '../verify.ts';
import {
  POSITION_MAX,
  buildAppend,
  commandEventIds,
  decodeStoredEvent,
  esdbStreamName,
  expectedRevisionOf,
  expectedVersionHolds,
  fromStoredMetadata,
  parseEsdbStreamName,
  positionOfNumber,
  positionToNumber,
  revisionOfVersion,
  tenantStreamPrefix,
  toEsdbConnectionString,
  toStoredMetadata,
  validateAppendRequest,
  versionOfRevision,
  type EsdbNewEvent,
  type EsdbStoredEvent,
} from './mapping.ts';

const at = '2026-03-01T08:00:00.000Z';
const hash = 'a'.repeat(64);

/** What EventStoreDB gives back for an event the adapter wrote: JSON text in, parsed JSON out. */
function storeAndRead(
  streamName: string,
  event: EsdbNewEvent,
  revision: bigint,
  position: bigint,
): EsdbStoredEvent {
  return {
    streamName,
    eventId: event.eventId,
    type: event.type,
    revision,
    position: { commit: position, prepare: position },
    isJson: true,
    data: JSON.parse(JSON.stringify(event.data)) as unknown,
    metadata: JSON.parse(JSON.stringify(event.metadata)) as unknown,
  };
}

function request(overrides: Partial<AppendRequest> = {}): AppendRequest {
  return {
    tenantId: 'acme',
    streamId: 'member-42',
    expectedVersion: 'any',
    events: [
      {
        eventId: newId(),
        type: 'PointsEarned',
        data: { points: 10 },
        metadata: { tenantId: 'acme', recordedAt: at },
      },
    ],
    ...overrides,
  };
}

describe('stream names', () => {
  it('names a ledger stream ledger-<tenant>.<stream> and parses it back', () => {
    expect(esdbStreamName('acme', 'member-42')).toBe('ledger-acme.member-42');
    expect(parseEsdbStreamName('ledger-acme.member-42')).toEqual({ tenantId: 'acme', streamId: 'member-42' });
    // Stream ids may hold the separator and dashes; the tenant ends at the first '.'.
    expect(parseEsdbStreamName(esdbStreamName('acme-eu', 'a.b-c.d'))).toEqual({
      tenantId: 'acme-eu',
      streamId: 'a.b-c.d',
    });
  });

  it('round-trips any valid tenant and stream id', () => {
    const tenant = fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,20}$/);
    const stream = fc.string({ minLength: 1, maxLength: 128 });
    fc.assert(
      fc.property(tenant, stream, (tenantId, streamId) => {
        expect(parseEsdbStreamName(esdbStreamName(tenantId, streamId))).toEqual({ tenantId, streamId });
      }),
    );
  });

  it("keeps a tenant's prefix from matching a tenant whose id extends it", () => {
    // With '-' as the separator, 'ledger-acme-' would also select every stream of tenant 'acme-eu'.
    const prefix = tenantStreamPrefix('acme');
    expect(prefix).toBe('ledger-acme.');
    expect(esdbStreamName('acme', 'member-1').startsWith(prefix)).toBe(true);
    expect(esdbStreamName('acme-eu', 'member-1').startsWith(prefix)).toBe(false);
    expect(esdbStreamName('acme', 'eu.member-1').startsWith(tenantStreamPrefix('acme-eu'))).toBe(false);
  });

  it('refuses names the ledger did not make', () => {
    for (const name of [
      '$ce-ledger',
      'ledger-',
      'ledger-.x',
      'ledger-acme',
      'ledger-acme.',
      'ledger-ACME.x',
      'member-acme.x',
    ]) {
      expect(parseEsdbStreamName(name)).toBeNull();
    }
    expect(() => esdbStreamName('Acme', 's')).toThrow(EventStoreUsageError);
    expect(() => esdbStreamName('ac.me', 's')).toThrow(EventStoreUsageError);
    expect(() => esdbStreamName('acme', '')).toThrow(EventStoreUsageError);
    expect(() => esdbStreamName('acme', 'x'.repeat(129))).toThrow(EventStoreUsageError);
    expect(() => tenantStreamPrefix('')).toThrow(EventStoreUsageError);
  });
});

describe('versions and revisions', () => {
  it("maps version n to revision n - 1, and 0 / 'no-stream' to NO_STREAM", () => {
    expect(NO_STREAM).toBe('no_stream');
    expect(ANY).toBe('any');
    expect(expectedRevisionOf('no-stream')).toBe(NO_STREAM);
    expect(expectedRevisionOf(0)).toBe(NO_STREAM);
    expect(expectedRevisionOf('any')).toBe(ANY);
    expect(expectedRevisionOf(1)).toBe(0n);
    expect(expectedRevisionOf(17)).toBe(16n);
    expect(revisionOfVersion(1)).toBe(0n);
    expect(versionOfRevision(0n)).toBe(1);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER - 1 }), (version) => {
        expect(versionOfRevision(revisionOfVersion(version))).toBe(version);
      }),
    );
  });

  it('refuses versions below 1 and revisions out of range', () => {
    expect(() => revisionOfVersion(0)).toThrow();
    expect(() => revisionOfVersion(1.5)).toThrow();
    expect(() => versionOfRevision(-1n)).toThrow();
    expect(() => versionOfRevision(2n ** 63n)).toThrow();
  });

  it('checks an expected version as the SQL adapter does', () => {
    expect(expectedVersionHolds('any', null)).toBe(true);
    expect(expectedVersionHolds('any', 7)).toBe(true);
    expect(expectedVersionHolds('no-stream', null)).toBe(true);
    expect(expectedVersionHolds('no-stream', 1)).toBe(false);
    expect(expectedVersionHolds(0, null)).toBe(true);
    expect(expectedVersionHolds(0, 1)).toBe(false);
    expect(expectedVersionHolds(3, 3)).toBe(true);
    expect(expectedVersionHolds(3, 4)).toBe(false);
    expect(expectedVersionHolds(1, null)).toBe(false);
  });
});

describe('deterministic event ids', () => {
  it('are uuid v5, stable, and differ per index, tenant and command', () => {
    const ids = commandEventIds('acme', 'idem-1', 3);
    expect(ids).toEqual(commandEventIds('acme', 'idem-1', 3));
    expect(ids[0]).toBe(derivedId('acme', 'idem-1', '0'));
    expect(new Set(ids).size).toBe(3);
    for (const id of ids) {
      expect(isUuid(id)).toBe(true);
      expect(id[14]).toBe('5');
    }
    expect(commandEventIds('acme-eu', 'idem-1', 1)[0]).not.toBe(ids[0]);
    expect(commandEventIds('acme', 'idem-2', 1)[0]).not.toBe(ids[0]);
    // The parts are joined with a separator no part holds: ('a', 'b-c') and ('a-b', 'c') stay apart.
    expect(commandEventIds('a', 'b-c', 1)[0]).not.toBe(commandEventIds('a-b', 'c', 1)[0]);
  });
});

describe('metadata', () => {
  it('writes the caller metadata plus the hash and reads back exactly the caller metadata', () => {
    const metadata: EventMetadata = {
      tenantId: 'acme',
      recordedAt: at,
      correlationId: 'req-1',
      commandId: 'idem-1',
      actor: 'pos:store-7 "till" 2 — ü \u2028',
    };
    const outcome = {
      commandId: 'idem-1',
      requestHash: 'b'.repeat(64),
      eventCount: 2,
      response: { status: 201, body: { ok: 1 } },
    };
    const stored = JSON.parse(JSON.stringify(toStoredMetadata(metadata, hash, outcome))) as unknown;
    const read = fromStoredMetadata(stored);
    expect(read.metadataJson).toBe(JSON.stringify(metadata));
    expect(read.metadata).toEqual(metadata);
    expect(read.streamHash).toBe(hash);
    expect(read.outcome).toEqual(outcome);

    const plain = fromStoredMetadata(
      JSON.parse(JSON.stringify(toStoredMetadata(metadata, hash, null))) as unknown,
    );
    expect(plain.outcome).toBeNull();
    expect(plain.metadataJson).toBe(JSON.stringify(metadata));
  });

  it('refuses stored metadata without a hash or with a malformed outcome', () => {
    expect(() => fromStoredMetadata({ tenantId: 'acme', recordedAt: at })).toThrow();
    expect(() => fromStoredMetadata({ tenantId: 'acme', recordedAt: at, streamHash: 'x' })).toThrow();
    expect(() => fromStoredMetadata('text')).toThrow();
    expect(() =>
      fromStoredMetadata({
        tenantId: 'acme',
        recordedAt: at,
        streamHash: hash,
        commandOutcome: { commandId: 'k' },
      }),
    ).toThrow();
  });
});

describe('positions', () => {
  it('carries commit positions up to 2^53 - 1 and refuses what a double cannot hold', () => {
    expect(positionToNumber(1n)).toBe(1);
    expect(positionToNumber(123_456_789n)).toBe(123_456_789);
    expect(positionToNumber(BigInt(POSITION_MAX))).toBe(Number.MAX_SAFE_INTEGER);
    expect(() => positionToNumber(BigInt(POSITION_MAX) + 1n)).toThrow(/2\^53/);
    expect(() => positionToNumber(2n ** 63n)).toThrow();
    expect(() => positionToNumber(0n)).toThrow();
    expect(() => positionToNumber(-1n)).toThrow();
  });

  it('resumes after a position with commit = prepare', () => {
    expect(positionOfNumber(0)).toEqual({ commit: 0n, prepare: 0n });
    expect(positionOfNumber(4096)).toEqual({ commit: 4096n, prepare: 4096n });
    expect(() => positionOfNumber(-1)).toThrow();
    expect(() => positionOfNumber(2 ** 53)).toThrow();
  });
});

describe('building and decoding events', () => {
  it('hashes an append as the SQL adapter does, so the stream verifier checks what EventStoreDB returns', () => {
    const first = request({
      events: [
        {
          eventId: newId(),
          type: 'A',
          data: { n: 1, text: 'héllo "quoted" \u2028' },
          metadata: { tenantId: 'acme', recordedAt: '2026-03-01T08:00:00Z' },
        },
        {
          eventId: newId(),
          type: 'B',
          data: [1, 'two', null],
          metadata: { tenantId: 'acme', recordedAt: '2026-03-01T08:00:00Z' },
        },
      ],
    });
    const ids = commandEventIds('acme', 'idem-1', 2);
    const outcome = { commandId: 'idem-1', requestHash: 'c'.repeat(64), eventCount: 2, response: null };
    const built = buildAppend(first, ids, 0, GENESIS_HASH, outcome);
    expect(built.stored.map((event) => event.eventId)).toEqual(ids);
    expect(built.stored[0]!.metadata['commandOutcome']).toEqual(outcome);
    expect(built.stored[1]!.metadata['commandOutcome']).toBeUndefined();
    expect(built.recorded.map((event) => event.streamVersion)).toEqual([1, 2]);

    const second = request({
      events: [
        { eventId: newId(), type: 'C', data: 'just text', metadata: { tenantId: 'acme', recordedAt: at } },
      ],
    });
    const next = buildAppend(second, [second.events[0]!.eventId], 2, built.recorded[1]!.streamHash, null);

    const name = esdbStreamName('acme', 'member-42');
    const stored = [...built.stored, ...next.stored].map((event, index) =>
      storeAndRead(name, event, BigInt(index), BigInt(1000 + index * 100)),
    );
    const decoded = stored.map(decodeStoredEvent);
    const verifier = new StreamChainVerifier('acme', 'member-42');
    decoded.forEach((item) => verifier.add(item.event));
    expect(verifier.finish({ version: 3, lastHash: next.recorded[0]!.streamHash })).toEqual([]);

    expect(decoded.map((item) => item.event.streamHash)).toEqual(
      [...built.recorded, ...next.recorded].map((event) => event.streamHash),
    );
    expect(decoded[0]!.event).toMatchObject({
      tenantId: 'acme',
      streamId: 'member-42',
      streamVersion: 1,
      partition: 0,
      partitionHash: '',
      position: 1000,
    });
    expect(decoded[0]!.event.data).toEqual({ n: 1, text: 'héllo "quoted" \u2028' });
    expect(decoded[0]!.event.recordedAt).toBe('2026-03-01T08:00:00.000Z');
    expect(decoded[0]!.event.metadata).toEqual({ tenantId: 'acme', recordedAt: '2026-03-01T08:00:00Z' });
    expect(decoded[0]!.outcome).toEqual(outcome);
    expect(decoded[2]!.event.data).toBe('just text');
  });

  it('refuses events the ledger did not write', () => {
    const built = buildAppend(request(), [newId()], 0, GENESIS_HASH, null);
    const good = storeAndRead(esdbStreamName('acme', 's'), built.stored[0]!, 0n, 500n);
    expect(() => decodeStoredEvent({ ...good, streamName: 'orders-1' })).toThrow();
    expect(() => decodeStoredEvent({ ...good, streamName: esdbStreamName('other', 's') })).toThrow(
      /names tenant/,
    );
    expect(() => decodeStoredEvent({ ...good, isJson: false })).toThrow();
    expect(() => decodeStoredEvent({ ...good, position: null })).toThrow(/position/);
    expect(() => decodeStoredEvent({ ...good, metadata: { tenantId: 'acme', recordedAt: at } })).toThrow();
  });
});

describe('append validation', () => {
  it('accepts a well-formed append and refuses what EventStoreDB could not carry faithfully', () => {
    expect(() => validateAppendRequest(request())).not.toThrow();
    const withMetadata = (metadata: Record<string, unknown>) =>
      request({
        events: [
          {
            eventId: newId(),
            type: 'A',
            data: {},
            metadata: { tenantId: 'acme', recordedAt: at, ...metadata } as EventMetadata,
          },
        ],
      });
    expect(() => validateAppendRequest(withMetadata({ streamHash: hash }))).toThrow(EventStoreUsageError);
    expect(() => validateAppendRequest(withMetadata({ commandOutcome: {} }))).toThrow(EventStoreUsageError);
    expect(() => validateAppendRequest(withMetadata({ recordedAt: 'yesterday' }))).toThrow(
      EventStoreUsageError,
    );
    expect(() =>
      validateAppendRequest(
        request({
          events: [
            { eventId: newId(), type: 'A', data: undefined, metadata: { tenantId: 'acme', recordedAt: at } },
          ],
        }),
      ),
    ).toThrow(EventStoreUsageError);
    expect(() => validateAppendRequest(request({ tenantId: 'ac.me' }))).toThrow(EventStoreUsageError);
    expect(() => validateAppendRequest(request({ events: [] }))).toThrow(EventStoreUsageError);
    expect(() => validateAppendRequest(request({ expectedVersion: -1 }))).toThrow(EventStoreUsageError);
  });
});

describe('connection strings', () => {
  it('rewrites kurrentdb:// for this client and refuses anything else', () => {
    expect(toEsdbConnectionString('esdb://localhost:2113?tls=false')).toBe('esdb://localhost:2113?tls=false');
    expect(toEsdbConnectionString('kurrentdb://admin:changeit@db:2113?tls=true')).toBe(
      'esdb://admin:changeit@db:2113?tls=true',
    );
    expect(toEsdbConnectionString('kurrentdb+discover://cluster.local:2113')).toBe(
      'esdb+discover://cluster.local:2113',
    );
    expect(toEsdbConnectionString('esdb+discover://cluster.local:2113')).toBe(
      'esdb+discover://cluster.local:2113',
    );
    expect(() => toEsdbConnectionString('sql')).toThrow();
    expect(() => toEsdbConnectionString('mysql://root:secret@host/db')).toThrow(/^(?!.*secret)/);
  });
});
