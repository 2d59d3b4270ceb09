import type { RowDataPacket } from 'mysql2/promise';
import { isoToSqlTime, type Pool } from '../db/pool.ts';
import type { LotsExpired } from '../domain/member/events.ts';
import { newId } from '../ids.ts';
import type { Runtime } from '../runtime.ts';
import { explainMemberUniqueKey, memberDecider } from './members.ts';
import { requestHash } from './run-command.ts';
import { memberStreamId } from './streams.ts';

/** Members looked up per query while sweeping. */
const SWEEP_PAGE_MEMBERS = 500;
/** Members expired at once: enough to keep the group committer busy, few enough to leave tills room. */
const SWEEP_CONCURRENCY = 8;

export interface SweepResult {
  tenantId: string;
  membersChecked: number;
  membersExpired: number;
  lots: number;
  points: number;
}

/**
 * Expires lots due by `asOf` in a tenant. Candidates come from the member_lots read model (indexed by
 * expiry); each member is then decided from its own authoritative state, so a stale candidate expires
 * nothing and a second run with the same asOf changes nothing.
 */
export async function sweepExpiredLots(
  runtime: Runtime,
  tenantId: string,
  asOf: string,
): Promise<SweepResult> {
  const tenant = await runtime.tenants.get(tenantId);
  if (tenant === null) throw new Error(`tenant ${tenantId} does not exist`);
  const runId = newId();
  const result: SweepResult = { tenantId, membersChecked: 0, membersExpired: 0, lots: 0, points: 0 };
  for (let after = ''; ;) {
    const members = await dueMembers(runtime.pool, tenantId, asOf, after);
    if (members.length === 0) return result;
    after = members[members.length - 1]!;
    for (let i = 0; i < members.length; i += SWEEP_CONCURRENCY) {
      await Promise.all(
        members.slice(i, i + SWEEP_CONCURRENCY).map(async (memberId) => {
          const command = { type: 'ExpireLots' as const, data: { asOf } };
          const outcome = await runtime.runner.run(
            {
              tenantId,
              streamId: memberStreamId(memberId),
              commandId: `expire:${runId}:${memberId}`,
              requestHash: requestHash(['expire', asOf, memberId]),
              actor: 'expire',
            },
            memberDecider(tenant, 'expire'),
            command,
            {
              respond: ({ events }) => {
                const expired = events.filter((e): e is LotsExpired => e.type === 'LotsExpired');
                return {
                  status: 200,
                  body: {
                    lots: expired.reduce((n, e) => n + e.data.lots.length, 0),
                    points: expired.reduce((n, e) => n + e.data.points, 0),
                  },
                };
              },
              explainUniqueKey: explainMemberUniqueKey,
            },
          );
          result.membersChecked += 1;
          if (!outcome.ok)
            throw new Error(`member ${memberId}: ${outcome.rejection.code}: ${outcome.rejection.detail}`);
          const body = outcome.response.body as { lots: number; points: number };
          if (body.lots > 0) {
            result.membersExpired += 1;
            result.lots += body.lots;
            result.points += body.points;
          }
        }),
      );
    }
  }
}

async function dueMembers(
  pool: Pool,
  tenantId: string,
  asOf: string,
  afterMemberId: string,
): Promise<string[]> {
  const [rows] = await pool.query<RowDataPacket[]>(
    `SELECT DISTINCT member_id FROM member_lots WHERE tenant_id = ? AND expires_at <= ? AND remaining > 0 AND member_id > ?
     ORDER BY member_id LIMIT ?`,
    [tenantId, isoToSqlTime(asOf), afterMemberId, SWEEP_PAGE_MEMBERS],
  );
  return rows.map((row) => String(row['member_id']));
}
