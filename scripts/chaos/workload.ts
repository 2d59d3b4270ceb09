import { TillConnection, type Attempt } from './http.ts';
import type { CommandKind, Journal, SentCommand } from './journal.ts';
import { sleep, type Rng } from './rng.ts';

/**
 * The POS clients: each is one till of one store, running checkouts one after another against the API
 * (through the cutting proxy). A command is retried on no answer (timeout, cut connection), 5xx, 429 or
 * concurrency-conflict, always with the SAME Idempotency-Key and the SAME body, with bounded attempts and
 * exponential backoff; any other answer is definitive and goes in the journal. A command that runs out of
 * attempts stays in the till's outbox and is sent again, same key and body, once the faults are over
 * (`resolve`), as a till does when it comes back online.
 */

/** A till gives up on one attempt after this long (the API's own request timeout is 10 s). */
export const ATTEMPT_TIMEOUT_MS = 5_000;
/** Attempts per command during the load; the outbox gets RESOLVE_ATTEMPTS_MAX more afterwards. */
export const ATTEMPTS_MAX = 12;
export const RESOLVE_ATTEMPTS_MAX = 30;
/** A command in flight when the load ends gets this long more before it waits in the outbox. */
const LOAD_GRACE_MS = 10_000;
const BACKOFF_MS_MIN = 100;
const BACKOFF_MS_MAX = 2_000;
/** Members one till registers at most (then it serves returning customers). */
const MEMBERS_PER_CLIENT_MAX = 8;
/** Share of acknowledged commands delivered a second time (same key, same body) to check the replay. */
const DUPLICATE_DELIVERY_SHARE = 0.04;
/** Holds left to expire on their own (a till that crashed mid-checkout) live at most this long. */
const ABANDONED_HOLD_TTL_SECONDS_MAX = 20;
const CATEGORIES = ['otc', 'rx', 'vitamins', 'devices', 'personal-care'] as const;
const CHANNELS = ['store', 'wechat', 'app', 'o2o', 'b2c'] as const;

export interface TenantKeys {
  tenantId: string;
  supportKey: string;
  auditorKey: string;
}

export interface ClientSetup {
  index: number;
  tenant: TenantKeys;
  storeId: string;
  posKey: string;
}

interface Member {
  memberId: string;
  phone: string;
  /** The last `available` an answer told this till; null for another till's member. */
  available: number | null;
}

interface Order {
  orderId: string;
  memberId: string;
  purchaseBody: Record<string, unknown>;
  totalFen: number;
  refundedFen: number;
  /** A refund of it has an unknown outcome: refunding again could exceed the order by our own doing. */
  frozen: boolean;
}

function codeOf(body: unknown): string | null {
  if (typeof body === 'object' && body !== null && 'code' in body) {
    const code = (body as { code: unknown }).code;
    return typeof code === 'string' ? code : null;
  }
  return null;
}

function numberField(body: unknown, field: string): number | null {
  if (typeof body !== 'object' || body === null) return null;
  const value = (body as Record<string, unknown>)[field];
  return typeof value === 'number' ? value : null;
}

export class PosClient {
  private readonly connection: TillConnection;
  private readonly members: Member[] = [];
  private readonly orders: Order[] = [];
  private readonly outbox: SentCommand[] = [];
  private counter = 0;
  private phones = 0;
  /** No new attempt after this instant: the command waits in the outbox instead. */
  private giveUpAtMs = Number.POSITIVE_INFINITY;
  commandsSent = 0;

  constructor(
    private readonly setup: ClientSetup,
    port: number,
    private readonly journal: Journal,
    private readonly rng: Rng,
    private readonly runTag: string,
    private readonly thinkMs: readonly [number, number],
  ) {
    this.connection = new TillConnection(port);
  }

  /** Checkouts until the deadline or `commandsMax` commands sent. */
  async run(deadlineMs: number, commandsMax: number): Promise<void> {
    this.giveUpAtMs = deadlineMs + LOAD_GRACE_MS;
    while (Date.now() < deadlineMs && this.commandsSent < commandsMax) {
      await this.checkout(deadlineMs);
      await sleep(this.rng.int(this.thinkMs[0], this.thinkMs[1]));
    }
  }

  /** Sends the outbox again (same keys, same bodies) until each command has a definitive answer. */
  async resolve(deadlineMs: number): Promise<number> {
    this.giveUpAtMs = deadlineMs;
    let unresolved = 0;
    for (const command of this.outbox.splice(0)) {
      await this.deliver(command, RESOLVE_ATTEMPTS_MAX);
      if (command.answer === null) unresolved += 1;
    }
    return unresolved;
  }

  close(): void {
    this.connection.close();
  }

  private nextId(prefix: string): string {
    this.counter += 1;
    return `${prefix}-${this.runTag}-${this.setup.index}-${this.counter}`;
  }

  private async checkout(deadlineMs: number): Promise<void> {
    if (this.members.length === 0 || (this.members.length < MEMBERS_PER_CLIENT_MAX && this.rng.chance(0.1))) {
      await this.register();
      return;
    }
    const action = this.rng.weighted({
      purchase: 34,
      holdThenEnd: 20,
      redemption: 12,
      refund: 12,
      adjustment: 7,
      duplicateOrder: 2,
      duplicatePhone: 1,
      abandonedHold: Date.now() < deadlineMs - (ABANDONED_HOLD_TTL_SECONDS_MAX + 15) * 1000 ? 3 : 0,
    });
    switch (action) {
      case 'purchase':
        return this.purchase(this.pickMember());
      case 'holdThenEnd':
        return this.holdThenEnd(this.pickMember());
      case 'redemption':
        return this.redemption(this.pickMember());
      case 'refund':
        return this.refund();
      case 'adjustment':
        return this.adjustment(this.pickMember());
      case 'duplicateOrder':
        return this.duplicateOrder();
      case 'duplicatePhone':
        return this.duplicatePhone();
      case 'abandonedHold':
        return this.abandonedHold(this.ownMember());
    }
  }

  private ownMember(): Member {
    return this.rng.pick(this.members);
  }

  /** Mostly this till's own members; sometimes another till's (two tills on one member at once). */
  private pickMember(): Member {
    const shared = this.journal.members.get(this.setup.tenant.tenantId) ?? [];
    if (shared.length > this.members.length && this.rng.chance(0.15)) {
      const memberId = this.rng.pick(shared);
      const own = this.members.find((m) => m.memberId === memberId);
      return own ?? { memberId, phone: '', available: null };
    }
    return this.ownMember();
  }

  private pointsToAsk(member: Member): number {
    const available = member.available ?? 100;
    // Now and then more than the till believes is there: a definitive insufficient-points.
    if (available <= 0 || this.rng.chance(0.1)) return Math.max(1, available) + this.rng.int(1, 200);
    return this.rng.int(1, Math.max(1, Math.floor(available * 0.5)));
  }

  private remember(member: Member, body: unknown): void {
    const available = numberField(body, 'available');
    if (available !== null && this.members.includes(member)) member.available = available;
  }

  private async register(): Promise<void> {
    const memberId = this.rng.uuid();
    // A phone per registration sent (not per member acknowledged): an unanswered one may still be recorded.
    this.phones += 1;
    const phone = `139${String(this.setup.index * 1_000_000 + this.phones).padStart(8, '0')}`;
    const command = await this.send('register', memberId, '/v1/members', 'pos', ['201'], {
      memberId,
      phone,
      storeId: this.setup.storeId,
      channel: this.rng.pick(CHANNELS),
    });
    if (command.answer?.status === 201) {
      const member = { memberId, phone, available: 0 };
      this.members.push(member);
      this.journal.publishMember(this.setup.tenant.tenantId, memberId);
    }
  }

  /** A second registration of a known phone under a new member id: member-exists, nothing written. */
  private async duplicatePhone(): Promise<void> {
    const existing = this.ownMember();
    const memberId = this.rng.uuid();
    await this.send(
      'register',
      memberId,
      '/v1/members',
      'pos',
      ['409:member-exists'],
      { memberId, phone: existing.phone, storeId: this.setup.storeId, channel: 'store' },
      'duplicate phone',
    );
  }

  private async purchase(member: Member): Promise<void> {
    const orderId = this.nextId('o');
    const lines = Array.from({ length: this.rng.int(1, 3) }, () => {
      const amountFen = this.rng.int(300, 40_000);
      const line: Record<string, unknown> = {
        sku: `sku-${this.rng.int(1, 500)}`,
        category: this.rng.pick(CATEGORIES),
        quantity: this.rng.int(1, 3),
        amountFen,
      };
      if (this.rng.chance(0.15)) line['insuranceFen'] = this.rng.int(0, Math.floor(amountFen / 2));
      return line;
    });
    const body = { orderId, storeId: this.setup.storeId, lines };
    const command = await this.send(
      'purchase',
      member.memberId,
      `/v1/members/${member.memberId}/purchases`,
      'pos',
      ['201'],
      body,
    );
    if (command.answer?.status === 201) {
      this.remember(member, command.answer.body);
      const totalFen = lines.reduce((sum, line) => sum + Number(line['amountFen']), 0);
      this.orders.push({
        orderId,
        memberId: member.memberId,
        purchaseBody: body,
        totalFen,
        refundedFen: 0,
        frozen: false,
      });
    }
  }

  /** An order already recorded, sent again under a NEW Idempotency-Key: order-already-recorded. */
  private async duplicateOrder(): Promise<void> {
    if (this.orders.length === 0) return this.purchase(this.ownMember());
    const order = this.rng.pick(this.orders);
    await this.send(
      'purchase',
      order.memberId,
      `/v1/members/${order.memberId}/purchases`,
      'pos',
      ['409:order-already-recorded'],
      order.purchaseBody,
      'duplicate orderId under a new key',
    );
  }

  private checkoutOrderId(member: Member): string {
    const own = this.orders.filter((order) => order.memberId === member.memberId);
    // Points paid against a recorded order are restored when it is refunded; otherwise a fresh order id.
    return own.length > 0 && this.rng.chance(0.5) ? this.rng.pick(own).orderId : this.nextId('c');
  }

  private async holdThenEnd(member: Member): Promise<void> {
    const body: Record<string, unknown> = {
      orderId: this.checkoutOrderId(member),
      storeId: this.setup.storeId,
      points: this.pointsToAsk(member),
    };
    if (this.rng.chance(0.5)) body['holdId'] = this.rng.uuid();
    const hold = await this.send(
      'hold',
      member.memberId,
      `/v1/members/${member.memberId}/holds`,
      'pos',
      ['201', '422:insufficient-points', '422:too-many-holds'],
      body,
    );
    if (hold.answer?.status !== 201) return;
    this.remember(member, hold.answer.body);
    const holdId = (hold.answer.body as { holdId: string }).holdId;
    const held = numberField(hold.answer.body, 'points') ?? 0;
    const capture = this.rng.chance(0.65);
    const endBody: Record<string, unknown> = {};
    if (capture && held > 1 && this.rng.chance(0.3)) endBody['points'] = this.rng.int(1, held - 1);
    const kind: CommandKind = capture ? 'capture' : 'release';
    const path = `/v1/members/${member.memberId}/holds/${holdId}/${kind}`;
    // A refund's reversal may have taken the balance below what is held: that capture is insufficient-points.
    const end = await this.send(
      kind,
      member.memberId,
      path,
      'pos',
      capture ? ['200', '422:insufficient-points'] : ['200'],
      endBody,
    );
    if (end.answer?.status !== 200) return;
    this.remember(member, end.answer.body);
    if (this.rng.chance(0.05)) {
      // Ending it again under a new key: the hold is no longer active, nothing changes.
      const again: CommandKind = this.rng.chance(0.5) ? 'capture' : 'release';
      await this.send(
        again,
        member.memberId,
        `/v1/members/${member.memberId}/holds/${holdId}/${again}`,
        'pos',
        ['409:hold-not-active'],
        {},
        'hold ended twice',
      );
    }
  }

  /** A hold nobody captures or releases, with a short TTL: it must expire by itself. */
  private async abandonedHold(member: Member): Promise<void> {
    const body = {
      orderId: this.nextId('a'),
      storeId: this.setup.storeId,
      points: this.pointsToAsk(member),
      ttlSeconds: this.rng.int(3, ABANDONED_HOLD_TTL_SECONDS_MAX),
    };
    await this.send(
      'hold',
      member.memberId,
      `/v1/members/${member.memberId}/holds`,
      'pos',
      ['201', '422:insufficient-points', '422:too-many-holds'],
      body,
      'abandoned hold',
    );
  }

  private async redemption(member: Member): Promise<void> {
    const body = {
      orderId: this.checkoutOrderId(member),
      storeId: this.setup.storeId,
      points: this.pointsToAsk(member),
    };
    const command = await this.send(
      'redemption',
      member.memberId,
      `/v1/members/${member.memberId}/redemptions`,
      'pos',
      ['201', '422:insufficient-points'],
      body,
    );
    if (command.answer !== null) this.remember(member, command.answer.body);
  }

  private async refund(): Promise<void> {
    const open = this.orders.filter((order) => !order.frozen && order.refundedFen < order.totalFen);
    if (open.length === 0) return this.purchase(this.ownMember());
    const order = this.rng.pick(open);
    const remaining = order.totalFen - order.refundedFen;
    const exceed = this.rng.chance(0.08);
    const amountFen = exceed
      ? remaining + this.rng.int(1, 500)
      : this.rng.chance(0.3)
        ? remaining
        : this.rng.int(1, remaining);
    const body = {
      refundId: this.nextId('f'),
      orderId: order.orderId,
      storeId: this.setup.storeId,
      amountFen,
    };
    const command = await this.send(
      'refund',
      order.memberId,
      `/v1/members/${order.memberId}/refunds`,
      'pos',
      exceed ? ['422:refund-exceeds-order'] : ['201'],
      body,
      exceed ? 'refund beyond the order' : null,
    );
    if (command.answer === null) order.frozen = true;
    else if (command.answer.status === 201) order.refundedFen += amountFen;
    const member = this.members.find((m) => m.memberId === order.memberId);
    if (member !== undefined && command.answer !== null) this.remember(member, command.answer.body);
  }

  private async adjustment(member: Member): Promise<void> {
    const debit = this.rng.chance(0.35);
    const points = debit ? -this.pointsToAsk(member) : this.rng.int(1, 500);
    const body: Record<string, unknown> = {
      adjustmentId: this.nextId('adj'),
      points,
      reason: debit ? 'chaos: goodwill reversed' : 'chaos: goodwill credit',
    };
    if (this.rng.chance(0.3)) body['ticket'] = `T-${this.rng.int(1000, 9999)}`;
    const command = await this.send(
      'adjustment',
      member.memberId,
      `/v1/members/${member.memberId}/adjustments`,
      'support',
      debit ? ['201', '422:insufficient-points'] : ['201'],
      body,
    );
    if (command.answer !== null) this.remember(member, command.answer.body);
  }

  private async send(
    kind: CommandKind,
    memberId: string,
    path: string,
    role: 'pos' | 'support',
    expected: readonly string[],
    body: Record<string, unknown>,
    note: string | null = null,
  ): Promise<SentCommand> {
    const command = this.journal.add({
      tenantId: this.setup.tenant.tenantId,
      client: this.setup.index,
      kind,
      idempotencyKey: this.nextId('k'),
      memberId,
      path,
      body,
      role,
      expected,
      note,
    });
    this.commandsSent += 1;
    await this.deliver(command, ATTEMPTS_MAX);
    if (command.answer === null) this.outbox.push(command);
    // Only what was done is delivered again: a rejected command stored nothing and would be decided afresh.
    else if (command.answer.status < 300 && this.rng.chance(DUPLICATE_DELIVERY_SHARE))
      await this.deliverAgain(command);
    return command;
  }

  private headers(command: SentCommand): Record<string, string> {
    const key = command.role === 'pos' ? this.setup.posKey : this.setup.tenant.supportKey;
    return { authorization: `Bearer ${key}`, 'idempotency-key': command.idempotencyKey };
  }

  /** Attempts until a definitive answer or `attemptsMax` more attempts; same key, same body every time. */
  private async deliver(command: SentCommand, attemptsMax: number): Promise<void> {
    for (let attempt = 1; attempt <= attemptsMax && Date.now() < this.giveUpAtMs; attempt++) {
      command.attempts += 1;
      const result = await this.attempt(command, `${command.idempotencyKey}.a${command.attempts}`);
      command.attemptLog.push(
        `a${command.attempts} @${(this.journal.nowMs() / 1000).toFixed(1)} ${outcomeOf(result)}`,
      );
      if (result.kind === 'answer' && isDefinitive(result)) {
        command.answer = {
          status: result.status,
          code: result.status >= 400 ? codeOf(result.body) : null,
          body: result.body,
          replayed: result.replayed,
          atMs: this.journal.nowMs(),
        };
        return;
      }
      const backoff = Math.min(BACKOFF_MS_MAX, BACKOFF_MS_MIN * 2 ** (attempt - 1));
      await sleep(backoff / 2 + this.rng.next() * (backoff / 2));
    }
  }

  private async attempt(command: SentCommand, requestId: string): Promise<Attempt> {
    this.journal.counters.requests += 1;
    const headers = { ...this.headers(command), 'x-request-id': requestId };
    const result = await this.connection.request(
      'POST',
      command.path,
      headers,
      command.body,
      ATTEMPT_TIMEOUT_MS,
    );
    if (result.kind === 'no-answer') {
      if (result.reason === 'timeout') this.journal.counters.noAnswerTimeout += 1;
      else this.journal.counters.noAnswerConnection += 1;
    } else if (!isDefinitive(result)) {
      this.journal.transientAnswers.push({
        atMs: this.journal.nowMs(),
        status: result.status,
        code: codeOf(result.body),
        kind: command.kind,
      });
    }
    return result;
  }

  /** The same command delivered again after its answer: the answer must come back identical, as a replay. */
  private async deliverAgain(command: SentCommand): Promise<void> {
    const first = command.answer;
    if (first === null) return;
    for (let attempt = 1; attempt <= ATTEMPTS_MAX && Date.now() < this.giveUpAtMs; attempt++) {
      const result = await this.attempt(command, `${command.idempotencyKey}.dup${attempt}`);
      if (result.kind === 'answer' && isDefinitive(result)) {
        this.journal.counters.duplicateDeliveries += 1;
        const sameBody = JSON.stringify(result.body) === JSON.stringify(first.body);
        if (result.status !== first.status || !sameBody || !result.replayed) {
          this.journal.replayMismatches.push(
            `${command.idempotencyKey} (${command.kind}): first ${first.status} ${JSON.stringify(first.body)}, again ${result.status}` +
              ` replayed=${result.replayed} ${JSON.stringify(result.body)}`,
          );
        }
        return;
      }
      await sleep(Math.min(BACKOFF_MS_MAX, BACKOFF_MS_MIN * 2 ** (attempt - 1)));
    }
  }
}

function outcomeOf(result: Attempt): string {
  return result.kind === 'answer'
    ? `${result.status}${result.status >= 400 ? `:${codeOf(result.body) ?? ''}` : ''}`
    : result.reason;
}

/** 2xx and the 4xx that say what happened; 5xx, 429 and concurrency-conflict mean "try again". */
function isDefinitive(result: Extract<Attempt, { kind: 'answer' }>): boolean {
  if (result.status >= 500 || result.status === 429) return false;
  if (result.status === 409 && codeOf(result.body) === 'concurrency-conflict') return false;
  return true;
}
