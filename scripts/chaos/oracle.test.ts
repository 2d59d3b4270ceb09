import { describe, expect, it } from 'vitest';
import { Journal, type CommandKind, type SentCommand } from './journal.ts';
import { checkJournal, checkLedger, expectedMembers, type EventRow, type LedgerSnapshot } from './oracle.ts';

/**
 * The oracle must see what it is there to see: a consistent ledger passes, and each way of losing or
 * doubling a command, or of getting a balance wrong, is named. (The chaos run itself only ever shows the
 * first case when the ledger is right, so this is where the oracle's teeth are proven.)
 */

const TENANT = 'chaos-a';
const MEMBER = '6a0f6a43-7d53-4a53-9a5e-0b8f8f3f2c11';
const STREAM = `member-${MEMBER}`;
const LATER = '2099-01-01T00:00:00.000Z';

function answered(
  journal: Journal,
  kind: CommandKind,
  key: string,
  path: string,
  body: Record<string, unknown>,
  status: number,
  answer: unknown,
): SentCommand {
  const command = journal.add({
    tenantId: TENANT,
    client: 0,
    kind,
    idempotencyKey: key,
    memberId: MEMBER,
    path,
    body,
    role: 'pos',
    expected: [String(status)],
    note: null,
  });
  command.attempts = 1;
  const code = status >= 400 ? String((answer as { code: string }).code) : null;
  command.answer = { status, code, body: answer, replayed: false, atMs: 0 };
  if (code !== null) command.expected = [`${status}:${code}`];
  return command;
}

/** register, purchase (+120), hold 50, capture 30, redemption refused, refund (-12 +3), adjustment +7 => 118, held 0. */
function scenario(): { journal: Journal; ledger: LedgerSnapshot } {
  const journal = new Journal();
  const m = `/v1/members/${MEMBER}`;
  answered(journal, 'register', 'k1', '/v1/members', { memberId: MEMBER }, 201, { memberId: MEMBER });
  answered(journal, 'purchase', 'k2', `${m}/purchases`, { orderId: 'o1' }, 201, {
    pointsEarned: 120,
    balance: 120,
    available: 120,
    lot: null,
  });
  answered(journal, 'hold', 'k3', `${m}/holds`, { orderId: 'o1', points: 50 }, 201, {
    holdId: 'h1',
    points: 50,
    expiresAt: LATER,
    available: 70,
  });
  answered(journal, 'capture', 'k4', `${m}/holds/h1/capture`, { points: 30 }, 200, {
    pointsRedeemed: 30,
    balance: 90,
    available: 90,
  });
  answered(journal, 'redemption', 'k5', `${m}/redemptions`, { orderId: 'o2', points: 1000 }, 422, {
    code: 'insufficient-points',
  });
  answered(journal, 'refund', 'k6', `${m}/refunds`, { refundId: 'f1', orderId: 'o1' }, 201, {
    pointsReversed: 12,
    pointsRestored: 3,
    balance: 81,
    available: 81,
  });
  answered(journal, 'adjustment', 'k7', `${m}/adjustments`, { adjustmentId: 'a1', points: 7 }, 201, {
    balance: 88,
    available: 88,
  });
  const event = (
    version: number,
    type: string,
    commandId: string,
    data: Record<string, unknown>,
  ): EventRow => ({
    streamId: STREAM,
    streamVersion: version,
    type,
    data,
    commandId,
    correlationId: `${commandId}.a1`,
  });
  const events = [
    event(1, 'MemberRegistered', 'k1', { memberId: MEMBER, phone: '13900000001' }),
    event(2, 'PurchaseRecorded', 'k2', { orderId: 'o1' }),
    event(3, 'PointsHeld', 'k3', { holdId: 'h1' }),
    event(4, 'HoldCaptured', 'k4', { holdId: 'h1' }),
    event(5, 'PurchaseRefunded', 'k6', { refundId: 'f1' }),
    event(6, 'PointsAdjusted', 'k7', { adjustmentId: 'a1' }),
  ];
  const commands = journal.commands
    .filter((c) => c.answer !== null && c.answer.status < 300)
    .map((c) => {
      const own = events.filter((e) => e.commandId === c.idempotencyKey);
      return {
        commandId: c.idempotencyKey,
        streamId: STREAM,
        firstVersion: own[0]!.streamVersion,
        eventCount: own.length,
        responseStatus: c.answer!.status,
        responseBody: JSON.stringify(c.answer!.body),
      };
    });
  return {
    journal,
    ledger: {
      tenantId: TENANT,
      commands,
      events,
      accounts: [{ memberId: MEMBER, balance: 88, version: 6 }],
      views: new Map([
        [MEMBER, { view: { balance: 88, held: 0, available: 88 }, balanceFromEvents: 88, heldFromEvents: 0 }],
      ]),
      readAtMs: Date.parse('2030-01-01T00:00:00.000Z'),
    },
  };
}

function kinds(journal: Journal, ledger: LedgerSnapshot): string[] {
  const expected = expectedMembers(journal.commands);
  return [
    ...checkJournal(journal.commands, journal.replayMismatches),
    ...checkLedger(journal.commands, expected, ledger),
  ].map((d) => d.kind);
}

describe('chaos oracle', () => {
  it('models balances from the answers alone', () => {
    const { journal } = scenario();
    const member = expectedMembers(journal.commands).get(`${TENANT}/${MEMBER}`);
    expect(member?.balance).toBe(88);
    expect([...(member?.holds.keys() ?? [])]).toEqual([]);
  });

  it('passes a ledger that holds exactly what was acknowledged', () => {
    const { journal, ledger } = scenario();
    expect(kinds(journal, ledger)).toEqual([]);
  });

  it('names an acknowledged command that is not in the ledger', () => {
    const { journal, ledger } = scenario();
    ledger.commands = ledger.commands.filter((row) => row.commandId !== 'k2');
    ledger.events = ledger.events.filter((e) => e.commandId !== 'k2');
    expect(kinds(journal, ledger)).toContain('lost command');
  });

  it('names a command applied twice, and a business id recorded twice', () => {
    const { journal, ledger } = scenario();
    ledger.events.push({
      streamId: STREAM,
      streamVersion: 7,
      type: 'PurchaseRecorded',
      data: { orderId: 'o1' },
      commandId: 'k2',
      correlationId: null,
    });
    const found = kinds(journal, ledger);
    expect(found).toContain('event count differs');
    expect(found).toContain('business id twice');
  });

  it('names a refused command that changed the ledger', () => {
    const { journal, ledger } = scenario();
    ledger.events.push({
      streamId: STREAM,
      streamVersion: 7,
      type: 'PointsRedeemed',
      data: { orderId: 'o2' },
      commandId: 'k5',
      correlationId: null,
    });
    expect(kinds(journal, ledger)).toContain('refused command recorded');
  });

  it('names a balance that differs in the API, the events or the read model', () => {
    const { journal, ledger } = scenario();
    ledger.accounts = [{ memberId: MEMBER, balance: 87, version: 6 }];
    ledger.views.set(MEMBER, {
      view: { balance: 88, held: 20, available: 68 },
      balanceFromEvents: 90,
      heldFromEvents: 0,
    });
    const found = kinds(journal, ledger);
    expect(found.filter((k) => k === 'balance differs')).toHaveLength(2);
    expect(found).toContain('held differs');
  });

  it('names a command without an answer and an answer the contract does not allow', () => {
    const { journal, ledger } = scenario();
    journal.commands[4]!.expected = ['201'];
    const lost = journal.add({
      tenantId: TENANT,
      client: 0,
      kind: 'purchase',
      idempotencyKey: 'k8',
      memberId: MEMBER,
      path: '/x',
      body: {},
      role: 'pos',
      expected: ['201'],
      note: null,
    });
    lost.attemptLog.push('a1 @0.0 timeout');
    const found = kinds(journal, ledger);
    expect(found).toContain('unexpected answer');
    expect(found).toContain('no definitive answer');
  });

  it('names a command in the ledger that nobody sent', () => {
    const { journal, ledger } = scenario();
    ledger.commands.push({
      commandId: 'ghost',
      streamId: STREAM,
      firstVersion: 7,
      eventCount: 1,
      responseStatus: 201,
      responseBody: '{}',
    });
    ledger.events.push({
      streamId: STREAM,
      streamVersion: 7,
      type: 'PointsAdjusted',
      data: { adjustmentId: 'a2' },
      commandId: 'ghost',
      correlationId: null,
    });
    expect(kinds(journal, ledger)).toContain('unknown command');
  });
});
