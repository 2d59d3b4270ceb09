/**
 * Real-time tags from purchased categories. A rule (tenant, category, min_purchases, window_days,
 * tag_pattern) holds for a member as of `now` while at least min_purchases purchases of the category fall
 * in the window_days before now. The projector keeps, per member and category, the latest
 * TAG_RECENT_PURCHASES_MAX purchase times, and writes each tag with the instant it stops holding:
 *   expires_at = (min_purchases-th latest purchase) + window_days,
 * stored only when that is after the latest purchase (the rule held at that purchase). A tag is a member's
 * while expires_at > now, so a tag fades without any event, like a hold. category '*' matches every
 * category; '{category}' in the pattern is replaced by the category ('chronic:{category}').
 * Purchases count once per order and category; refunds do not uncount them.
 */
import type { RowDataPacket } from 'mysql2/promise';
import { fail } from '../domain/assert.ts';
import { CATEGORY_CHARS_MAX } from '../domain/limits.ts';
import { addDaysIso } from '../domain/time.ts';
import {
  inTransaction,
  isoToSqlTime,
  sqlInt,
  sqlTimeToIso,
  type Pool,
  type PoolConnection,
} from '../db/pool.ts';
import { isCanonicalInstantFast } from './sql-time.ts';
import { LIVE_TABLES } from './tables.ts';

/** Latest purchase times kept per member and category; also the largest min_purchases a rule may ask. */
export const TAG_RECENT_PURCHASES_MAX = 10;
export const TAG_RULES_PER_TENANT_MAX = 200;
export const TAG_RULE_WINDOW_DAYS_MAX = 3650;
export const TAG_PATTERN_CHARS_MAX = 128;
export const TAG_CHARS_MAX = 160;
/** Tags returned for one member. */
export const MEMBER_TAGS_MAX = 500;
export const TAG_CATEGORY_ANY = '*';

export interface TagRule {
  category: string;
  minPurchases: number;
  windowDays: number;
  tagPattern: string;
}

const TAG_PATTERN = /^[A-Za-z0-9_.:{}-]+$/;

/** Throws on a rule outside the limits (the caller's bug or bad admin input). */
export function validateTagRules(rules: readonly TagRule[]): void {
  if (rules.length > TAG_RULES_PER_TENANT_MAX)
    throw new RangeError(`at most ${TAG_RULES_PER_TENANT_MAX} tag rules`);
  const keys = new Set<string>();
  for (const rule of rules) {
    const where = `tag rule ${JSON.stringify(rule)}`;
    if (
      typeof rule.category !== 'string' ||
      rule.category.length < 1 ||
      rule.category.length > CATEGORY_CHARS_MAX
    ) {
      throw new RangeError(`${where}: category must be 1-${CATEGORY_CHARS_MAX} chars or '*'`);
    }
    if (
      !Number.isSafeInteger(rule.minPurchases) ||
      rule.minPurchases < 1 ||
      rule.minPurchases > TAG_RECENT_PURCHASES_MAX
    ) {
      throw new RangeError(`${where}: minPurchases must be 1-${TAG_RECENT_PURCHASES_MAX}`);
    }
    if (
      !Number.isSafeInteger(rule.windowDays) ||
      rule.windowDays < 1 ||
      rule.windowDays > TAG_RULE_WINDOW_DAYS_MAX
    ) {
      throw new RangeError(`${where}: windowDays must be 1-${TAG_RULE_WINDOW_DAYS_MAX}`);
    }
    if (!TAG_PATTERN.test(rule.tagPattern) || rule.tagPattern.length > TAG_PATTERN_CHARS_MAX) {
      throw new RangeError(
        `${where}: tagPattern must be 1-${TAG_PATTERN_CHARS_MAX} of A-Z a-z 0-9 _ . : - and {category}`,
      );
    }
    if (
      rule.tagPattern.replaceAll('{category}', '').includes('{') ||
      rule.tagPattern.replaceAll('{category}', '').includes('}')
    ) {
      throw new RangeError(`${where}: the only placeholder is {category}`);
    }
    const key = `${rule.category}\u001f${rule.tagPattern}`;
    if (keys.has(key)) throw new RangeError(`${where}: duplicate (category, tagPattern)`);
    keys.add(key);
  }
}

export function tagName(pattern: string, category: string): string {
  return pattern.replaceAll('{category}', category).slice(0, TAG_CHARS_MAX);
}

/** One member's purchases of one category: count and latest times, newest first. */
export interface CategoryPurchases {
  category: string;
  purchases: number;
  recentAt: readonly string[];
}

/** Adds a purchase at `at`; keeps the newest TAG_RECENT_PURCHASES_MAX times, newest first. */
export function withPurchase(row: CategoryPurchases, at: string): CategoryPurchases {
  // Canonical instants compare as strings in time order, which the list relies on.
  if (!isCanonicalInstantFast(at)) fail(`purchase time ${at} is not canonical`);
  // One new list, built in order (the projector and the audit call this for every purchase's categories).
  const recentAt: string[] = [];
  let inserted = false;
  for (const time of row.recentAt) {
    if (recentAt.length === TAG_RECENT_PURCHASES_MAX) break;
    if (!inserted && !(time > at)) {
      recentAt.push(at);
      inserted = true;
      if (recentAt.length === TAG_RECENT_PURCHASES_MAX) break;
    }
    recentAt.push(time);
  }
  if (!inserted && recentAt.length < TAG_RECENT_PURCHASES_MAX) recentAt.push(at);
  return { category: row.category, purchases: row.purchases + 1, recentAt };
}

export function encodeRecent(recentAt: readonly string[]): string {
  return recentAt.join(',');
}

export function decodeRecent(text: string): string[] {
  return text === '' ? [] : text.split(',');
}

/** The tags a member's category history gives under `rules`: tag -> expires_at. Pure; the same for live and rebuild. */
export function evaluateTags(
  categories: Iterable<CategoryPurchases>,
  rules: readonly TagRule[],
): Map<string, string> {
  const tags = new Map<string, string>();
  if (rules.length === 0) return tags;
  for (const row of categories) {
    for (const rule of rules) {
      if (rule.category !== TAG_CATEGORY_ANY && rule.category !== row.category) continue;
      const anchor = row.recentAt[rule.minPurchases - 1];
      const latest = row.recentAt[0];
      if (anchor === undefined || latest === undefined) continue;
      const expiresAt = addDaysIso(anchor, rule.windowDays);
      if (expiresAt <= latest) continue;
      const tag = tagName(rule.tagPattern, row.category);
      const known = tags.get(tag);
      if (known === undefined || expiresAt > known) tags.set(tag, expiresAt);
    }
  }
  return tags;
}

// ---- SQL ----------------------------------------------------------------------------------------

export interface TagRuleSet {
  version: number;
  rules: TagRule[];
}

/**
 * The tenant's rules. Reads the version first: a rule change racing this read leaves a stale version, never
 * stale rules under a new version. On a connection inside a snapshot (the audit) both reads agree exactly.
 */
export async function loadTagRuleSet(db: Pool | PoolConnection, tenantId: string): Promise<TagRuleSet> {
  const version = await tagRulesVersion(db, tenantId);
  const [rows] = await db.query<RowDataPacket[]>(
    'SELECT category, tag_pattern, min_purchases, window_days FROM tag_rules WHERE tenant_id = ? ORDER BY category, tag_pattern',
    [tenantId],
  );
  return {
    version,
    rules: rows.map((row) => ({
      category: String(row['category']),
      tagPattern: String(row['tag_pattern']),
      minPurchases: sqlInt(row['min_purchases']),
      windowDays: sqlInt(row['window_days']),
    })),
  };
}

export async function tagRulesVersion(db: Pool | PoolConnection, tenantId: string): Promise<number> {
  const [rows] = await db.query<RowDataPacket[]>('SELECT version FROM tag_rule_sets WHERE tenant_id = ?', [
    tenantId,
  ]);
  return rows[0] === undefined ? 0 : sqlInt(rows[0]['version']);
}

/**
 * Replaces the tenant's tag rules and returns the new rules version. Tags of members who buy from now on
 * follow the new rules at once; existing tags are re-derived by the projector that owns each partition
 * (from member_category_purchases, no replay), within a few polls.
 */
export async function setTagRules(pool: Pool, tenantId: string, rules: readonly TagRule[]): Promise<number> {
  validateTagRules(rules);
  return inTransaction(pool, async (connection) => {
    // Lock (or create) the version row first: concurrent setTagRules calls serialise here.
    await connection.query(
      `INSERT INTO tag_rule_sets (tenant_id, version, updated_at) VALUES (?, 0, UTC_TIMESTAMP(3))
       ON DUPLICATE KEY UPDATE tenant_id = tenant_id`,
      [tenantId],
    );
    const [versionRows] = await connection.query<RowDataPacket[]>(
      'SELECT version FROM tag_rule_sets WHERE tenant_id = ? FOR UPDATE',
      [tenantId],
    );
    const version = sqlInt(versionRows[0]?.['version']) + 1;
    await connection.query('DELETE FROM tag_rules WHERE tenant_id = ?', [tenantId]);
    if (rules.length > 0) {
      await connection.query(
        `INSERT INTO tag_rules (tenant_id, category, tag_pattern, min_purchases, window_days) VALUES ${rules
          .map(() => '(?, ?, ?, ?, ?)')
          .join(', ')}`,
        rules.flatMap((rule) => [
          tenantId,
          rule.category,
          rule.tagPattern,
          rule.minPurchases,
          rule.windowDays,
        ]),
      );
    }
    await connection.query(
      'UPDATE tag_rule_sets SET version = ?, updated_at = UTC_TIMESTAMP(3) WHERE tenant_id = ?',
      [version, tenantId],
    );
    return version;
  });
}

export async function getTagRules(pool: Pool, tenantId: string): Promise<TagRuleSet> {
  return loadTagRuleSet(pool, tenantId);
}

/** A member's tags that hold at `asOf` (default: the database's clock), sorted. */
export async function memberTags(
  pool: Pool,
  tenantId: string,
  memberId: string,
  asOf?: string,
): Promise<string[]> {
  const [rows] = await pool.query<RowDataPacket[]>(
    `SELECT tag FROM ${LIVE_TABLES.member_tags}
     WHERE tenant_id = ? AND member_id = ? AND expires_at > ${asOf === undefined ? 'UTC_TIMESTAMP(3)' : '?'}
     ORDER BY tag LIMIT ${MEMBER_TAGS_MAX}`,
    asOf === undefined ? [tenantId, memberId] : [tenantId, memberId, isoToSqlTime(asOf)],
  );
  return rows.map((row) => String(row['tag']));
}

/** Members holding a tag at `asOf` (a segment), for marketing exports; paged by member id. */
export async function membersWithTag(
  pool: Pool,
  tenantId: string,
  tag: string,
  asOf: string,
  options: { afterMemberId?: string; limit?: number } = {},
): Promise<{ memberId: string; expiresAt: string }[]> {
  const limit = Math.min(options.limit ?? 1000, 10_000);
  const [rows] = await pool.query<RowDataPacket[]>(
    `SELECT member_id, expires_at FROM ${LIVE_TABLES.member_tags}
     WHERE tenant_id = ? AND tag = ? AND expires_at > ? AND member_id > ? ORDER BY member_id LIMIT ?`,
    [tenantId, tag, isoToSqlTime(asOf), options.afterMemberId ?? '', limit],
  );
  return rows.map((row) => ({
    memberId: String(row['member_id']),
    expiresAt: sqlTimeToIso(String(row['expires_at'])),
  }));
}
