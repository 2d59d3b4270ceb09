/**
 * What the POS clients sent and what they were told: the only input of the oracle. Nothing here reads the
 * ledger's code or tables; a command counts as acknowledged when the API gave a definitive answer.
 */

export type CommandKind =
  'register' | 'purchase' | 'hold' | 'capture' | 'release' | 'redemption' | 'refund' | 'adjustment';

export interface Answer {
  status: number;
  /** The problem's `code` for a 4xx, else null. */
  code: string | null;
  body: unknown;
  replayed: boolean;
  /** ms since the run started. */
  atMs: number;
}

export interface SentCommand {
  seq: number;
  tenantId: string;
  client: number;
  kind: CommandKind;
  idempotencyKey: string;
  memberId: string;
  path: string;
  body: Record<string, unknown>;
  role: 'pos' | 'support';
  /** Answers that are right for this command, as `status` or `status:code` ("201", "422:insufficient-points"). */
  expected: readonly string[];
  /** Why the command is there beyond the plain mix (a deliberate duplicate business id, ...). */
  note: string | null;
  attempts: number;
  /** The definitive answer; null while the outcome is unknown. */
  answer: Answer | null;
  /**
   * Every attempt: `a<n> @<seconds since the load began> <outcome>`. Attempt n carries X-Request-Id
   * `<key>.a<n>`, which the API writes into the events' correlationId: the ledger says which attempt wrote it.
   */
  attemptLog: string[];
  /** The hold's expiry as the API answered it (holds only). */
  holdExpiresAt?: string;
}

export interface TransientAnswer {
  atMs: number;
  status: number;
  code: string | null;
  kind: CommandKind | 'read';
}

export class Journal {
  readonly commands: SentCommand[] = [];
  readonly transientAnswers: TransientAnswer[] = [];
  /** Acknowledged members per tenant, so clients also act on each other's members (concurrency). */
  readonly members = new Map<string, string[]>();
  readonly counters = {
    requests: 0,
    noAnswerTimeout: 0,
    noAnswerConnection: 0,
    duplicateDeliveries: 0,
  };
  /** Duplicate deliveries (same key, same body, after an answer) whose answer was not the first one again. */
  readonly replayMismatches: string[] = [];
  /** The clock of the run's report lines: reset when the load begins. */
  startedMs = Date.now();
  private seq = 0;

  add(command: Omit<SentCommand, 'seq' | 'attempts' | 'answer' | 'attemptLog'>): SentCommand {
    this.seq += 1;
    const sent: SentCommand = { ...command, seq: this.seq, attempts: 0, answer: null, attemptLog: [] };
    this.commands.push(sent);
    return sent;
  }

  nowMs(): number {
    return Date.now() - this.startedMs;
  }

  publishMember(tenantId: string, memberId: string): void {
    const list = this.members.get(tenantId) ?? [];
    list.push(memberId);
    this.members.set(tenantId, list);
  }
}

export function answerLabel(answer: Pick<Answer, 'status' | 'code'>): string {
  return answer.code === null ? String(answer.status) : `${answer.status}:${answer.code}`;
}

export function isExpected(command: SentCommand): boolean {
  if (command.answer === null) return false;
  return (
    command.expected.includes(String(command.answer.status)) ||
    command.expected.includes(answerLabel(command.answer))
  );
}
