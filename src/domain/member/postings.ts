/**
 * Double entry (DESIGN.md invariant 3): every points movement is a pair of postings between the
 * member's account and one of the tenant's accounts, signed so that each event's postings sum to
 * zero. The member's account is the balance; the tenant accounts are what finance reports.
 */
import { assert, assertNever } from '../assert.ts';
import { assertPositivePoints, sumBy } from '../points.ts';
import type { MemberEvent } from './events.ts';

export type TenantAccount = 'issued' | 'redeemed' | 'expired' | 'adjusted' | 'reversed' | 'restored';
export type Account = 'member' | TenantAccount;

export const ACCOUNTS: readonly Account[] = [
  'member',
  'issued',
  'redeemed',
  'expired',
  'adjusted',
  'reversed',
  'restored',
];

/** Signed points on one account: + is a credit to the member's side of the books. */
export type Posting = Readonly<{ account: Account; points: number }>;

/** Member +points, tenant account -points (points may be negative for a debit adjustment). */
function pair(points: number, account: TenantAccount): Posting[] {
  if (points === 0) return [];
  return [
    { account: 'member', points },
    { account, points: -points },
  ];
}

function debit(points: number, account: TenantAccount): Posting[] {
  return points === 0 ? [] : pair(-points, account);
}

function credit(points: number, account: TenantAccount): Posting[] {
  return points === 0 ? [] : pair(points, account);
}

/**
 * The event types that post (and so move points or credit lots); every other type's postingsFor and
 * movementsOf are empty. Readers that need only those (the audit's pass A, the export's event pass) parse
 * the data of these types alone.
 */
export const POSTING_EVENT_TYPES: readonly MemberEvent['type'][] = [
  'PurchaseRecorded',
  'HoldCaptured',
  'PointsRedeemed',
  'PurchaseRefunded',
  'PointsAdjusted',
  'LotsExpired',
];

/** POSTING_EVENT_TYPES as an SQL list, for `event_type IN (...)`. */
export const POSTING_EVENT_TYPES_SQL = POSTING_EVENT_TYPES.map((type) => `'${type}'`).join(', ');

export function postingsFor(event: MemberEvent): Posting[] {
  let postings: Posting[];
  switch (event.type) {
    case 'MemberRegistered':
    case 'MemberProfileUpdated':
    case 'TierChanged':
    case 'PointsHeld':
    case 'HoldReleased':
      postings = [];
      break;
    case 'PurchaseRecorded':
      postings = credit(event.data.points, 'issued');
      break;
    case 'HoldCaptured':
    case 'PointsRedeemed':
      assertPositivePoints(event.data.points, `${event.type} points`);
      postings = debit(event.data.points, 'redeemed');
      break;
    case 'PurchaseRefunded':
      postings = [
        ...debit(event.data.pointsReversed, 'reversed'),
        ...credit(event.data.pointsRestored, 'restored'),
      ];
      break;
    case 'PointsAdjusted':
      postings = pair(event.data.points, 'adjusted');
      break;
    case 'LotsExpired':
      postings = debit(event.data.points, 'expired');
      break;
    default:
      return assertNever(event, 'member event');
  }
  assert(sumBy(postings, (posting) => posting.points) === 0, `${event.type} postings do not sum to zero`);
  return postings;
}

/** How an event changes the member's balance: the sum of its member postings. */
export function memberPointsDelta(event: MemberEvent): number {
  return sumBy(
    postingsFor(event).filter((posting) => posting.account === 'member'),
    (posting) => posting.points,
  );
}
