/**
 * `ledger export`: the reconciled finance files of one closed period (CONTRACT.md "Finance export",
 * docs/finance.md). The order of work:
 *  1. refuse a period that is not closed by the ledger's clock, and an output directory that is not empty;
 *  2. fix the event-store position the export is as of (the partition heads now) and make sure the read
 *     models have reached it (drain the projector once, then wait a bounded time; otherwise refuse);
 *  3. compute the rows from ledger_entries (member order, keyset pages) and, at the same time, the totals
 *     again from the events themselves (event-pass.ts);
 *  4. run every check; write the files into a temporary directory beside DIR, hash them, verify the hashes;
 *  5. only if every check passed: rename the directory into place and record the run in export_runs.
 * A refusal leaves no file behind.
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type { RowDataPacket } from 'mysql2/promise';
import type { Clock } from '../clock.ts';
import { sqlInt, type Pool } from '../db/pool.ts';
import { addPoints, pointsToFen } from '../domain/points.ts';
import {
  MOVEMENT_KINDS,
  STORE_MOVEMENT_KINDS,
  type MovementKind,
  type StoreMovementKind,
} from '../domain/member/index.ts';
import type { EventStore, PartitionHead } from '../eventstore/port.ts';
import { newId } from '../ids.ts';
import { drainTenant } from './drain.ts';
import { estimateBreakage, type BreakageEstimate } from './breakage.ts';
import {
  carryHeadsMissing,
  recomputeFromEvents,
  type EventPassCarry,
  type EventTotals,
} from './event-pass.ts';
import { previousPeriodExport, recordExportRun, type PreviousExport } from './export-runs.ts';
import { csvField, HashedFileWriter, sha256OfFile } from './files.ts';
import {
  forEachMemberRow,
  memberRowsPlan,
  storeDailyTotals,
  storeRows,
  type MemberRowsPlan,
} from './ledger-pass.ts';
import { resolvePeriod, tenantAsOf, type Period } from './period.ts';

/** How long the export waits for projectors to reach the heads it fixed, after its own drain. */
export const EXPORT_PROJECTION_WAIT_MS = 30_000;
const EXPORT_PROJECTION_POLL_MS = 200;

export const BALANCES_HEADER =
  'member_id,opening_points,earned_points,redeemed_points,expired_points,adjusted_points,reversed_points,restored_points,closing_points';
export const STORES_HEADER = 'store_id,earned_points,redeemed_points,reversed_points,restored_points';

export type ExportRefusal =
  'unknown-tenant' | 'period-open' | 'output-exists' | 'read-models-behind' | 'not-reconciled';

export interface ExportCheck {
  name: string;
  passed: boolean;
  detail: string;
}

export class ExportRefusedError extends Error {
  override name = 'ExportRefusedError';
  constructor(
    readonly reason: ExportRefusal,
    message: string,
    readonly checks: ExportCheck[] = [],
  ) {
    super(message);
  }
}

export interface ExportOptions {
  tenantId: string;
  from: string;
  to: string;
  outDir: string;
  /** Drain the projector once if the read models are behind (default true); false: only wait. */
  drain?: boolean;
  projectionWaitMs?: number;
  /**
   * Recompute from the log's first event even when the previous period's export left a carry (default
   * false): the independent pass then shares nothing with any earlier export, at the cost of reading the
   * tenant's whole history (`ledger export --full-recompute`, e.g. for a year-end close).
   */
  fullRecompute?: boolean;
}

export interface ExportDeps {
  pool: Pool;
  store: EventStore;
  clock: Clock;
}

export interface ManifestFile {
  name: string;
  rows: number;
  bytes: number;
  sha256: string;
}

export interface ExportSummary {
  tenantId: string;
  runId: string;
  period: { from: string; to: string; timeZone: string; fromInstant: string; toInstant: string };
  exportedAt: string;
  asOf: { partitions: PartitionHead[]; events: number };
  members: number;
  stores: number;
  totals: { balances: Record<string, number>; stores: Record<string, number> };
  pointValueFen: number;
  liabilityFen: number;
  outstandingPoints: number;
  debtPoints: number;
  breakage: BreakageEstimate;
  previousExport: { runId: string; from: string; to: string; closingPoints: number } | null;
  /**
   * Where the independent recomputation started: at the log's first event, or where the previous period's
   * export left off (its carried totals, checked against the log's heads), and how many events it read.
   */
  independentPass: { start: 'log-start' | 'previous-export'; reason: string; eventsRead: number };
  /** How the member rows were read (ledger-pass.ts): the whole history, or the accounts and the entries since `from`. */
  memberRows: { plan: MemberRowsPlan };
  reconciled: boolean;
  checks: ExportCheck[];
}

export interface ExportResult {
  runId: string;
  outDir: string;
  summary: ExportSummary;
  manifest: { files: ManifestFile[] };
}

type Movements = Record<MovementKind, number>;

function sumsEqual(a: Record<string, number>, b: Record<string, number>, keys: readonly string[]): string[] {
  return keys
    .filter((key) => (a[key] ?? 0) !== (b[key] ?? 0))
    .map((key) => `${key}: ${a[key] ?? 0} vs ${b[key] ?? 0}`);
}

async function checkpointsBehind(
  pool: Pool,
  tenantId: string,
  heads: readonly PartitionHead[],
): Promise<{ head: PartitionHead; checkpoint: number }[]> {
  const [rows] = await pool.query<RowDataPacket[]>(
    'SELECT partition_no, position FROM projection_checkpoints WHERE tenant_id = ?',
    [tenantId],
  );
  const checkpoints = new Map(rows.map((row) => [sqlInt(row['partition_no']), sqlInt(row['position'])]));
  return heads
    .map((head) => ({ head, checkpoint: checkpoints.get(head.partition) ?? 0 }))
    .filter(({ head, checkpoint }) => checkpoint < head.position);
}

/** Read models at or past the heads: drain once ourselves, then wait for whoever holds the leases. */
async function ensureProjected(
  deps: ExportDeps,
  tenantId: string,
  heads: readonly PartitionHead[],
  options: ExportOptions,
): Promise<void> {
  let behind = await checkpointsBehind(deps.pool, tenantId, heads);
  if (behind.length === 0) return;
  if (options.drain !== false) {
    await drainTenant(
      deps.pool,
      deps.store,
      tenantId,
      behind.map(({ head }) => head),
    );
    behind = await checkpointsBehind(deps.pool, tenantId, heads);
  }
  const deadline = Date.now() + (options.projectionWaitMs ?? EXPORT_PROJECTION_WAIT_MS);
  while (behind.length > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, EXPORT_PROJECTION_POLL_MS));
    behind = await checkpointsBehind(deps.pool, tenantId, heads);
  }
  if (behind.length > 0) {
    const lag = behind.map(
      ({ head, checkpoint }) =>
        `partition ${head.partition}: checkpoint ${checkpoint} < head ${head.position}`,
    );
    throw new ExportRefusedError(
      'read-models-behind',
      `the read models have not reached the event-store heads: ${lag.join('; ')}`,
    );
  }
}

async function ensureEmptyOutput(outDir: string): Promise<void> {
  const existing = await stat(outDir).catch(() => null);
  if (existing === null) return;
  if (!existing.isDirectory() || (await readdir(outDir)).length > 0) {
    throw new ExportRefusedError(
      'output-exists',
      `${outDir} exists and is not an empty directory; exports never overwrite files`,
    );
  }
}

export async function runExport(deps: ExportDeps, options: ExportOptions): Promise<ExportResult> {
  const { pool, store, clock } = deps;
  const { tenantId } = options;
  const tenant = await tenantAsOf(store, tenantId, null);
  if (tenant === null) throw new ExportRefusedError('unknown-tenant', `tenant ${tenantId} does not exist`);
  const period = resolvePeriod(options.from, options.to, tenant.timeZone);
  const now = clock.nowIso();
  if (period.toAt > now) {
    throw new ExportRefusedError(
      'period-open',
      `the period [${period.from}, ${period.to}) is not closed: ${period.to} starts at ${period.toAt} (${period.timeZone}) and the ledger's clock reads ${now}`,
    );
  }
  const outDir = resolve(options.outDir);
  await ensureEmptyOutput(outDir);
  const programme = (await tenantAsOf(store, tenantId, period.toAt))?.programme ?? tenant.programme;

  const heads = await store.partitionHeads(tenantId);
  await ensureProjected(deps, tenantId, heads, options);

  const runId = newId();
  await mkdir(dirname(outDir), { recursive: true });
  const temp = await mkdtemp(join(dirname(outDir), `.${basename(outDir)}.tmp-`));
  try {
    const result = await writeExport(deps, {
      tenantId,
      runId,
      period,
      heads,
      now,
      temp,
      pointValueFen: programme.pointValueFen,
      fullRecompute: options.fullRecompute === true,
    });
    await ensureEmptyOutput(outDir);
    await rename(temp, outDir);
    try {
      await recordExportRun(pool, {
        tenantId,
        runId,
        from: period.from,
        to: period.to,
        fromAt: period.fromAt,
        toAt: period.toAt,
        timeZone: period.timeZone,
        exportedAt: now,
        heads,
        members: result.summary.members,
        openingPoints: result.summary.totals.balances['opening_points']!,
        closingPoints: result.summary.totals.balances['closing_points']!,
        closingDigest: result.closingDigest,
        liabilityFen: result.summary.liabilityFen,
        manifestSha256: result.manifestSha256,
        carry: result.carry,
      });
    } catch (error) {
      // An export finance may rely on must be one the next period and the audit can check against.
      await rm(outDir, { recursive: true, force: true });
      throw error;
    }
    return { runId, outDir, summary: result.summary, manifest: result.manifest };
  } catch (error) {
    await rm(temp, { recursive: true, force: true });
    throw error;
  }
}

interface WriteInput {
  tenantId: string;
  runId: string;
  period: Period;
  heads: PartitionHead[];
  now: string;
  temp: string;
  pointValueFen: number;
  fullRecompute: boolean;
}

/** The carry the independent pass starts from, or null and why it reads the log from its start. */
function carryToUse(
  previous: PreviousExport | null,
  period: Period,
  fullRecompute: boolean,
): { carry: EventPassCarry | null; reason: string } {
  if (fullRecompute) return { carry: null, reason: 'asked for (--full-recompute)' };
  if (previous === null) return { carry: null, reason: `no earlier export ends at ${period.from}` };
  const carry = previous.carry;
  if (carry === null) return { carry: null, reason: `export ${previous.runId} left no carry` };
  if ('unusable' in carry) return { carry: null, reason: `export ${previous.runId}: ${carry.unusable}` };
  if (carry.closing !== previous.closingPoints)
    return {
      carry: null,
      reason: `the carry of export ${previous.runId} closes at ${carry.closing} points, its run at ${previous.closingPoints}`,
    };
  if (carry.toAt !== period.fromAt)
    return {
      carry: null,
      reason: `export ${previous.runId} ended at ${carry.toAt}, this period starts at ${period.fromAt}`,
    };
  return { carry, reason: `from the carry of export ${previous.runId}` };
}

async function writeExport(
  deps: ExportDeps,
  input: WriteInput,
): Promise<{
  summary: ExportSummary;
  manifest: { files: ManifestFile[] };
  closingDigest: string;
  manifestSha256: string;
  carry: EventPassCarry | null;
}> {
  const { pool } = deps;
  const { tenantId, period, heads } = input;
  const checks: ExportCheck[] = [];
  const check = (name: string, passed: boolean, detail: string) => checks.push({ name, passed, detail });

  const previous = await previousPeriodExport(pool, tenantId, period.from);
  const start = carryToUse(previous, period, input.fullRecompute);
  // The carry counts events up to the previous export's heads: they must still be in the log as it saw them.
  const headsMissing =
    start.carry === null ? [] : await carryHeadsMissing(pool, tenantId, start.carry, heads);
  // The independent pass runs while the rows are written (it is I/O and CPU the rows' pass leaves idle).
  const fromEvents: Promise<EventTotals> = recomputeFromEvents(pool, tenantId, period, heads, start.carry);
  fromEvents.catch(() => undefined);
  // So does the per-store query: one scan the database can make while the member pages are written.
  const storesFromRows = storeRows(pool, tenantId, period, heads);
  storesFromRows.catch(() => undefined);

  const balances = new HashedFileWriter(input.temp, 'balances.csv');
  const stores = new HashedFileWriter(input.temp, 'stores.csv');
  let opening = 0;
  let closing = 0;
  let outstanding = 0;
  let debt = 0;
  const movements: Movements = { earned: 0, redeemed: 0, expired: 0, adjusted: 0, reversed: 0, restored: 0 };
  const openingDigest = createHash('sha256');
  const closingDigest = createHash('sha256');
  let rowsNotRolling = 0;
  let rowsWithWrongSign = 0;
  const firstBadRows: string[] = [];
  try {
    // Inside the try: a failure here still closes the two writers below.
    const plan = await memberRowsPlan(pool, tenantId, period, input.now);
    await balances.line(BALANCES_HEADER, false);
    await forEachMemberRow(pool, tenantId, period, heads, plan, async (row) => {
      const moved = MOVEMENT_KINDS.reduce((sum, kind) => addPoints(sum, row.movements[kind]), 0);
      if (addPoints(row.opening, moved) !== row.closing) {
        rowsNotRolling += 1;
        if (firstBadRows.length < 10) firstBadRows.push(row.memberId);
      }
      const m = row.movements;
      if (m.earned < 0 || m.restored < 0 || m.redeemed > 0 || m.expired > 0 || m.reversed > 0)
        rowsWithWrongSign += 1;
      opening = addPoints(opening, row.opening);
      closing = addPoints(closing, row.closing);
      if (row.closing > 0) outstanding = addPoints(outstanding, row.closing);
      else debt = addPoints(debt, row.closing);
      for (const kind of MOVEMENT_KINDS) movements[kind] = addPoints(movements[kind], m[kind]);
      if (row.opening !== 0) openingDigest.update(`${row.memberId},${row.opening}\n`);
      if (row.closing !== 0) closingDigest.update(`${row.memberId},${row.closing}\n`);
      await balances.line(
        [csvField(row.memberId), row.opening, ...MOVEMENT_KINDS.map((kind) => m[kind]), row.closing].join(
          ',',
        ),
      );
    });
    const storeList = await storesFromRows;
    await stores.line(STORES_HEADER, false);
    const storeTotals: Record<StoreMovementKind, number> = {
      earned: 0,
      redeemed: 0,
      reversed: 0,
      restored: 0,
    };
    for (const row of storeList) {
      for (const kind of STORE_MOVEMENT_KINDS)
        storeTotals[kind] = addPoints(storeTotals[kind], row.movements[kind]);
      await stores.line(
        [csvField(row.storeId), ...STORE_MOVEMENT_KINDS.map((kind) => row.movements[kind])].join(','),
      );
    }
    const balancesFile = await balances.close();
    const storesFile = await stores.close();
    const events = await fromEvents;

    // --- the checks -----------------------------------------------------------------------------------
    check(
      'period-closed',
      true,
      `[${period.fromAt}, ${period.toAt}) ends at or before the ledger's clock (${input.now})`,
    );
    check(
      'read-models-current',
      true,
      `projector checkpoints are at or past the heads the export is as of (${heads.map((h) => h.position).join(',')})`,
    );
    check(
      'rows-roll-forward',
      rowsNotRolling === 0,
      rowsNotRolling === 0
        ? `on every one of ${balancesFile.rows} rows, opening + the six movements = closing`
        : `${rowsNotRolling} rows do not roll forward (first: ${firstBadRows.join(', ')})`,
    );
    check(
      'movement-signs',
      rowsWithWrongSign === 0,
      rowsWithWrongSign === 0
        ? 'earned and restored >= 0; redeemed, expired and reversed <= 0 on every row'
        : `${rowsWithWrongSign} rows have a movement of the wrong sign`,
    );
    const fromRows: Record<string, number> = { opening, closing, ...movements };
    const fromLog: Record<string, number> = {
      opening: events.opening,
      closing: events.closing,
      ...events.movements,
    };
    const totalDiffs = sumsEqual(fromRows, fromLog, ['opening', ...MOVEMENT_KINDS, 'closing']);
    check(
      'totals-match-events',
      totalDiffs.length === 0,
      totalDiffs.length === 0
        ? `opening, the six movements and closing equal their recomputation from the events (${events.periodEvents} member events in the period)`
        : `rows vs events differ: ${totalDiffs.join('; ')}`,
    );
    const storeDiffs: string[] = [];
    const storeIds = new Set([...storeList.map((s) => s.storeId), ...events.stores.keys()]);
    const byStore = new Map(storeList.map((s) => [s.storeId, s.movements]));
    for (const storeId of storeIds) {
      const diffs = sumsEqual(
        byStore.get(storeId) ?? {},
        events.stores.get(storeId) ?? {},
        STORE_MOVEMENT_KINDS,
      );
      if (diffs.length > 0) storeDiffs.push(`${storeId} (${diffs.join(', ')})`);
    }
    check(
      'stores-match-events',
      storeDiffs.length === 0,
      storeDiffs.length === 0
        ? `every store's movements equal their recomputation from the events (${storeList.length} stores)`
        : `stores differ: ${storeDiffs.slice(0, 10).join('; ')}`,
    );
    const storeVsRows = sumsEqual(storeTotals, movements, STORE_MOVEMENT_KINDS);
    check(
      'stores-match-balances',
      storeVsRows.length === 0,
      storeVsRows.length === 0
        ? 'the stores add up to the balances for earned, redeemed, reversed and restored'
        : `stores vs balances: ${storeVsRows.join('; ')}`,
    );
    const daily = await storeDailyTotals(pool, tenantId, period);
    const dailyDiffs: string[] = [];
    for (const storeId of new Set([...daily.keys(), ...byStore.keys()])) {
      const diffs = sumsEqual(byStore.get(storeId) ?? {}, daily.get(storeId) ?? {}, STORE_MOVEMENT_KINDS);
      if (diffs.length > 0) dailyDiffs.push(`${storeId} (${diffs.join(', ')})`);
    }
    check(
      'stores-match-store-daily-totals',
      dailyDiffs.length === 0,
      dailyDiffs.length === 0
        ? 'the stores equal the store_daily_totals read model over the local days of the period'
        : `store_daily_totals differ: ${dailyDiffs.slice(0, 10).join('; ')}`,
    );
    check(
      'period-complete-at-heads',
      events.lateEvents.length === 0,
      events.lateEvents.length === 0
        ? 'no event recorded before the end of the period lies beyond the heads the export is as of'
        : `${events.lateEvents.length} events of the period were committed after the export fixed its heads; export again`,
    );
    check(
      'previous-heads-in-log',
      headsMissing.length === 0,
      start.carry === null
        ? `the independent pass read the log from its first event (${start.reason})`
        : headsMissing.length === 0
          ? `the heads the previous export counted up to are in the log with the same hashes; the independent pass started ${start.reason}`
          : `the log no longer holds what the previous export counted: ${headsMissing.slice(0, 10).join('; ')}`,
    );
    const openingSha = openingDigest.digest('hex');
    if (previous === null) {
      check(
        'opening-equals-previous-closing',
        true,
        `no earlier export ends at ${period.from}; opening is the sum of every entry recorded before ${period.fromAt}`,
      );
    } else {
      const same = previous.closingPoints === opening && previous.closingDigest === openingSha;
      check(
        'opening-equals-previous-closing',
        same,
        same
          ? `opening equals the closing of export ${previous.runId} [${previous.from}, ${period.from}), in total (${opening}) and member by member (sha256 of member,points)`
          : `opening ${opening} (digest ${openingSha}) differs from the closing ${previous.closingPoints} (digest ${previous.closingDigest}) of export ${previous.runId}`,
      );
    }

    const liabilityFen = pointsToFen(closing, input.pointValueFen);
    const breakage = estimateBreakage({
      maturedCreditedPoints: events.maturedCreditedPoints,
      expiredPoints: events.expiredPoints,
      outstandingPoints: outstanding,
      pointValueFen: input.pointValueFen,
      liabilityFen,
    });
    const reconciled = checks.every((c) => c.passed);
    const summary: ExportSummary = {
      tenantId,
      runId: input.runId,
      period: {
        from: period.from,
        to: period.to,
        timeZone: period.timeZone,
        fromInstant: period.fromAt,
        toInstant: period.toAt,
      },
      exportedAt: input.now,
      asOf: { partitions: heads, events: heads.reduce((sum, h) => sum + h.position, 0) },
      members: balancesFile.rows,
      stores: storesFile.rows,
      totals: {
        balances: {
          opening_points: opening,
          ...Object.fromEntries(MOVEMENT_KINDS.map((kind) => [`${kind}_points`, movements[kind]])),
          closing_points: closing,
        },
        stores: Object.fromEntries(STORE_MOVEMENT_KINDS.map((kind) => [`${kind}_points`, storeTotals[kind]])),
      },
      pointValueFen: input.pointValueFen,
      liabilityFen,
      outstandingPoints: outstanding,
      debtPoints: debt,
      breakage,
      previousExport:
        previous === null
          ? null
          : {
              runId: previous.runId,
              from: previous.from,
              to: period.from,
              closingPoints: previous.closingPoints,
            },
      independentPass: {
        start: start.carry === null ? 'log-start' : 'previous-export',
        reason: start.reason,
        eventsRead: events.eventsRead,
      },
      memberRows: { plan },
      reconciled,
      checks,
    };
    if (!reconciled) {
      const failed = checks.filter((c) => !c.passed);
      throw new ExportRefusedError(
        'not-reconciled',
        `the export does not reconcile: ${failed.map((c) => `${c.name}: ${c.detail}`).join(' | ')}`,
        checks,
      );
    }
    const summaryWriter = new HashedFileWriter(input.temp, 'summary.json');
    await summaryWriter.text(`${JSON.stringify(summary, null, 2)}\n`);
    const summaryFile = await summaryWriter.close();
    const files: ManifestFile[] = [balancesFile, storesFile, { ...summaryFile, rows: 1 }];
    // The files on disk are what finance hands on: hash them again as written.
    for (const file of files) {
      const onDisk = await sha256OfFile(join(input.temp, file.name));
      if (onDisk !== file.sha256)
        throw new ExportRefusedError('not-reconciled', `${file.name} on disk does not match its sha256`);
    }
    const manifest = { tenantId, runId: input.runId, period: summary.period, files };
    const manifestWriter = new HashedFileWriter(input.temp, 'manifest.json');
    await manifestWriter.text(`${JSON.stringify(manifest, null, 2)}\n`);
    const manifestFile = await manifestWriter.close();
    return {
      summary,
      manifest,
      closingDigest: closingDigest.digest('hex'),
      manifestSha256: manifestFile.sha256,
      carry: events.carry,
    };
  } catch (error) {
    balances.destroy();
    stores.destroy();
    throw error;
  }
}
