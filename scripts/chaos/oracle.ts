import { isExpected, type SentCommand } from './journal.ts';

/**
 * The oracle: its own tiny model of the ledger, built only from what the POS clients were told, written
 * without src/domain. Balances are the sum of the points the acknowledged answers name (pointsEarned,
 * pointsRedeemed, pointsReversed, pointsRestored, an adjustment's points); holds are the acknowledged
 * holds no acknowledged capture or release ended, until their expiresAt. It then holds the ledger's
 * tables and API answers against that model and against the journal, and lists every difference.
 */

/** A hold expiring this close to the moment of the check could be counted either way: not compared. */
const HOLD_EXPIRY_AMBIGUITY_MS = 5_000;

export interface ExpectedMember {
  tenantId: string;
  memberId: string;
  balance: number;
  holds: Map<string, { points: number; expiresAtMs: number }>;
}

export interface CommandRow {
  commandId: string;
  streamId: string;
  firstVersion: number;
  eventCount: number;
  responseStatus: number | null;
  responseBody: string | null;
}

export interface EventRow {
  streamId: string;
  streamVersion: number;
  type: string;
  data: Record<string, unknown>;
  commandId: string | null;
  /** The request id of the HTTP attempt that wrote it (the chaos clients send `<key>.a<n>`). */
  correlationId: string | null;
}

export interface AccountRow {
  memberId: string;
  balance: number;
  version: number;
}

export interface MemberViewPoints {
  balance: number;
  held: number;
  available: number;
}

/** What the ledger holds for one tenant, read after the run. */
export interface LedgerSnapshot {
  tenantId: string;
  commands: CommandRow[];
  events: EventRow[];
  accounts: AccountRow[];
  /** GET /v1/members/{id} (auditor key) and GET .../balance, per member the oracle knows. */
  views: Map<
    string,
    { view: MemberViewPoints | null; balanceFromEvents: number | null; heldFromEvents: number | null }
  >;
  /** When the views were read (ms since epoch), for hold expiry. */
  readAtMs: number;
}

export interface Discrepancy {
  kind: string;
  detail: string;
}

function field(body: unknown, name: string): number {
  const value =
    typeof body === 'object' && body !== null ? (body as Record<string, unknown>)[name] : undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value))
    throw new Error(`oracle: answer has no integer ${name}: ${JSON.stringify(body)}`);
  return value;
}

function holdIdOfPath(path: string): string {
  const match = /\/holds\/([^/]+)\/(capture|release)$/.exec(path);
  if (match === null) throw new Error(`oracle: not a hold path: ${path}`);
  return match[1]!;
}

/** The model: each acknowledged command's effect, as its answer states it. */
export function expectedMembers(commands: readonly SentCommand[]): Map<string, ExpectedMember> {
  const members = new Map<string, ExpectedMember>();
  const memberOf = (command: SentCommand): ExpectedMember => {
    const key = `${command.tenantId}/${command.memberId}`;
    const member = members.get(key);
    if (member === undefined)
      throw new Error(
        `oracle: ${command.kind} ${command.idempotencyKey} acknowledged for an unregistered member ${key}`,
      );
    return member;
  };
  // Registrations first: another till's command on a member can be answered before the journal order shows it.
  for (const command of commands) {
    if (command.kind === 'register' && command.answer?.status === 201) {
      members.set(`${command.tenantId}/${command.memberId}`, {
        tenantId: command.tenantId,
        memberId: command.memberId,
        balance: 0,
        holds: new Map(),
      });
    }
  }
  for (const command of commands) {
    const answer = command.answer;
    if (answer === null || answer.status >= 300) continue;
    const body = answer.body;
    switch (command.kind) {
      case 'register':
        break;
      case 'purchase':
        memberOf(command).balance += field(body, 'pointsEarned');
        break;
      case 'hold': {
        const holdId = (body as { holdId: string }).holdId;
        const expiresAtMs = Date.parse((body as { expiresAt: string }).expiresAt);
        memberOf(command).holds.set(holdId, { points: field(body, 'points'), expiresAtMs });
        break;
      }
      case 'capture':
        memberOf(command).balance -= field(body, 'pointsRedeemed');
        memberOf(command).holds.delete(holdIdOfPath(command.path));
        break;
      case 'release':
        memberOf(command).holds.delete(holdIdOfPath(command.path));
        break;
      case 'redemption':
        memberOf(command).balance -= field(body, 'pointsRedeemed');
        break;
      case 'refund':
        memberOf(command).balance += field(body, 'pointsRestored') - field(body, 'pointsReversed');
        break;
      case 'adjustment':
        memberOf(command).balance += Number(command.body['points']);
        break;
    }
  }
  return members;
}

/** Every check of the journal alone: an outcome for each command, the answers the contract allows, replays. */
export function checkJournal(
  commands: readonly SentCommand[],
  replayMismatches: readonly string[],
): Discrepancy[] {
  const found: Discrepancy[] = [];
  for (const command of commands) {
    if (command.answer === null) {
      found.push({
        kind: 'no definitive answer',
        detail: `${command.kind} ${command.idempotencyKey} after ${command.attempts} attempts: ${command.attemptLog.slice(-5).join(', ')}`,
      });
    } else if (!isExpected(command)) {
      found.push({
        kind: 'unexpected answer',
        detail: `${command.kind} ${command.idempotencyKey}${command.note === null ? '' : ` (${command.note})`}: ${command.answer.status} ${JSON.stringify(command.answer.body).slice(0, 300)}; expected ${command.expected.join(' | ')}`,
      });
    }
  }
  for (const mismatch of replayMismatches) found.push({ kind: 'replay differs', detail: mismatch });
  return found;
}

/** Business ids that must appear once in a tenant's events (DESIGN.md invariant 1). */
const BUSINESS_IDS: readonly { type: string; field: string }[] = [
  { type: 'MemberRegistered', field: 'memberId' },
  { type: 'MemberRegistered', field: 'phone' },
  { type: 'PurchaseRecorded', field: 'orderId' },
  { type: 'PointsHeld', field: 'holdId' },
  { type: 'PurchaseRefunded', field: 'refundId' },
  { type: 'PointsAdjusted', field: 'adjustmentId' },
];

/** The ledger against the journal and the model, for one tenant. */
export function checkLedger(
  commands: readonly SentCommand[],
  expected: Map<string, ExpectedMember>,
  ledger: LedgerSnapshot,
): Discrepancy[] {
  const found: Discrepancy[] = [];
  const add = (kind: string, detail: string) => found.push({ kind, detail });
  const tenantCommands = commands.filter((command) => command.tenantId === ledger.tenantId);
  const rows = new Map(ledger.commands.map((row) => [row.commandId, row]));
  const eventsByCommand = new Map<string, EventRow[]>();
  for (const event of ledger.events) {
    if (event.commandId === null) {
      add('event without a command', `${event.streamId} v${event.streamVersion} ${event.type}`);
      continue;
    }
    const list = eventsByCommand.get(event.commandId) ?? [];
    list.push(event);
    eventsByCommand.set(event.commandId, list);
  }

  // Every acknowledged command is in the ledger exactly once; a refused one has no events, and at most the
  // refusal kept under its key (event_count 0, the very answer the till got), so every attempt gets it.
  const sentKeys = new Set<string>();
  for (const command of tenantCommands) {
    sentKeys.add(command.idempotencyKey);
    const answer = command.answer;
    if (answer === null) continue;
    const row = rows.get(command.idempotencyKey);
    const events = eventsByCommand.get(command.idempotencyKey) ?? [];
    const label = `${command.kind} ${command.idempotencyKey}`;
    if (answer.status >= 300) {
      const keptRefusal =
        row !== undefined &&
        row.eventCount === 0 &&
        row.responseStatus === answer.status &&
        row.responseBody !== null &&
        JSON.stringify(JSON.parse(row.responseBody)) === JSON.stringify(answer.body);
      if ((row !== undefined && !keptRefusal) || events.length > 0) {
        const writers = [...new Set(events.map((event) => event.correlationId ?? '?'))].join(', ');
        add(
          'refused command recorded',
          `${label} was answered ${answer.status} ${answer.code} but has ${row === undefined ? 'no' : 'a'} commands row and ${events.length} event(s)` +
            ` (written by ${writers || 'no event'}); attempts: ${command.attemptLog.join(', ')}`,
        );
      }
      continue;
    }
    if (row === undefined) {
      add(
        'lost command',
        `${label} was answered ${answer.status} but has no commands row (${events.length} event(s))`,
      );
      continue;
    }
    if (row.streamId !== `member-${command.memberId}`)
      add('command on the wrong stream', `${label}: ${row.streamId}, sent for member ${command.memberId}`);
    if (row.responseStatus !== answer.status)
      add('stored answer differs', `${label}: stored ${row.responseStatus}, answered ${answer.status}`);
    else if (
      row.responseBody === null ||
      JSON.stringify(JSON.parse(row.responseBody)) !== JSON.stringify(answer.body)
    ) {
      add(
        'stored answer differs',
        `${label}: stored ${row.responseBody}, answered ${JSON.stringify(answer.body)}`,
      );
    }
    if (events.length === 0) add('lost command', `${label} has a commands row but no events`);
    if (events.length !== row.eventCount)
      add(
        'event count differs',
        `${label}: ${events.length} event(s) carry its id, the commands row says ${row.eventCount}`,
      );
    const versions = events.map((event) => event.streamVersion).sort((a, b) => a - b);
    const contiguous = versions.every((version, index) => version === row.firstVersion + index);
    if (!contiguous || events.some((event) => event.streamId !== row.streamId)) {
      add(
        'events of one command scattered',
        `${label}: versions ${versions.join(',')} from ${row.firstVersion} on ${row.streamId}`,
      );
    }
  }
  // Nothing the clients never sent; every member command row is one of ours.
  for (const row of ledger.commands) {
    if (!row.streamId.startsWith('member-')) continue;
    if (!sentKeys.has(row.commandId))
      add('unknown command', `${row.commandId} on ${row.streamId} was never sent`);
  }
  for (const [commandId, events] of eventsByCommand) {
    if (!rows.has(commandId))
      add(
        'event without a command',
        `${events.length} event(s) carry command id ${commandId}, which has no commands row`,
      );
  }

  // No business id twice; a hold ends at most once.
  for (const { type, field: name } of BUSINESS_IDS) {
    const seen = new Map<string, number>();
    for (const event of ledger.events) {
      if (event.type !== type) continue;
      const value = String(event.data[name]);
      seen.set(value, (seen.get(value) ?? 0) + 1);
    }
    for (const [value, count] of seen)
      if (count > 1) add('business id twice', `${type}.${name} ${value} appears ${count} times`);
  }
  const ends = new Map<string, number>();
  for (const event of ledger.events) {
    if (event.type !== 'HoldCaptured' && event.type !== 'HoldReleased') continue;
    const holdId = String(event.data['holdId']);
    ends.set(holdId, (ends.get(holdId) ?? 0) + 1);
  }
  for (const [holdId, count] of ends)
    if (count > 1) add('hold ended twice', `hold ${holdId} has ${count} capture/release events`);

  // Every member's balance: the model, the API (auditor key), the balance computed from the events, the read model.
  const accounts = new Map(ledger.accounts.map((row) => [row.memberId, row]));
  for (const member of expected.values()) {
    if (member.tenantId !== ledger.tenantId) continue;
    const label = `member ${member.memberId}`;
    let held = 0;
    let ambiguous = false;
    for (const hold of member.holds.values()) {
      if (Math.abs(hold.expiresAtMs - ledger.readAtMs) < HOLD_EXPIRY_AMBIGUITY_MS) ambiguous = true;
      if (hold.expiresAtMs > ledger.readAtMs) held += hold.points;
    }
    const read = ledger.views.get(member.memberId);
    const view = read?.view ?? null;
    if (view === null) add('member missing', `${label}: GET /v1/members/{id} did not answer 200`);
    else {
      if (view.balance !== member.balance)
        add('balance differs', `${label}: API balance ${view.balance}, oracle ${member.balance}`);
      if (!ambiguous && view.held !== held)
        add('held differs', `${label}: API held ${view.held}, oracle ${held}`);
      if (view.available !== view.balance - view.held)
        add(
          'available differs',
          `${label}: API available ${view.available} != ${view.balance} - ${view.held}`,
        );
    }
    if (read?.balanceFromEvents !== member.balance)
      add(
        'balance differs',
        `${label}: GET .../balance ${String(read?.balanceFromEvents)}, oracle ${member.balance}`,
      );
    if (!ambiguous && read?.heldFromEvents !== held)
      add('held differs', `${label}: GET .../balance held ${String(read?.heldFromEvents)}, oracle ${held}`);
    const account = accounts.get(member.memberId);
    if (account === undefined) add('member missing', `${label}: no member_accounts row`);
    else if (account.balance !== member.balance)
      add(
        'balance differs',
        `${label}: member_accounts.balance ${account.balance}, oracle ${member.balance}`,
      );
  }
  for (const account of ledger.accounts) {
    if (!expected.has(`${ledger.tenantId}/${account.memberId}`))
      add('unknown member', `member_accounts has ${account.memberId}, never acknowledged as registered`);
  }
  return found;
}
