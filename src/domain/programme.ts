/**
 * A tenant's programme: the rules that turn spend into points, tiers and expiry dates. Parsed from a
 * programme file (CLI) or the tenant stream with one zod schema, so a missing field gets the same
 * default everywhere.
 */
import { z } from 'zod';
import { assert, assertNever } from './assert.ts';
import {
  CATEGORY_CHARS_MAX,
  EXPIRY_DAYS_MAX,
  POINT_VALUE_FEN_MAX,
  PROGRAMME_EXCLUDED_CATEGORIES_MAX,
  PROGRAMME_POINTS_PER_YUAN_MAX,
  PROGRAMME_TIERS_MAX,
  REFUND_WINDOW_DAYS_MAX,
  TIER_MULTIPLIER_PERMILLE_MAX,
  TIER_NAME_CHARS_MAX,
} from './limits.ts';
import { assertFen } from './points.ts';
import type { IsoInstant } from './time.ts';
import {
  addDaysToLocalDate,
  localDate,
  localYear,
  startOfLocalDateIso,
  startOfLocalYearIso,
} from './time.ts';

export type Tier = Readonly<{ name: string; minSpendFen: number; multiplierPermille: number }>;

/**
 * - end-of-following-year: a lot earned in local year Y expires at the first instant of Y+2.
 * - days: a lot earned on local date D is usable through the whole local day D+days and expires at
 *   the first instant of D+days+1 (day-aligned like the default, so lots group by date and a nightly
 *   expiry run at local midnight catches them).
 */
export type Expiry = Readonly<{ kind: 'end-of-following-year' }> | Readonly<{ kind: 'days'; days: number }>;

export type Clawback = 'debt' | 'cap-at-zero';

export type Programme = Readonly<{
  version: number;
  pointsPerYuan: number;
  excludedCategories: readonly string[];
  tiers: readonly Tier[];
  expiry: Expiry;
  pointValueFen: number;
  refundWindowDays: number;
  clawback: Clawback;
}>;

const DEFAULT_TIERS: readonly Tier[] = [
  { name: 'standard', minSpendFen: 0, multiplierPermille: 1000 },
  { name: 'silver', minSpendFen: 200_000, multiplierPermille: 1200 },
  { name: 'gold', minSpendFen: 1_000_000, multiplierPermille: 1500 },
];

const tierSchema = z.strictObject({
  name: z
    .string()
    .min(1)
    .max(TIER_NAME_CHARS_MAX)
    .regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, _ and - only'),
  minSpendFen: z.int().min(0),
  multiplierPermille: z.int().min(0).max(TIER_MULTIPLIER_PERMILLE_MAX),
});

const tiersSchema = z
  .array(tierSchema)
  .min(1)
  .max(PROGRAMME_TIERS_MAX)
  .superRefine((tiers, context) => {
    if (tiers[0] !== undefined && tiers[0].minSpendFen !== 0) {
      context.addIssue({
        code: 'custom',
        path: [0, 'minSpendFen'],
        message: 'the first tier must start at 0',
      });
    }
    for (let index = 1; index < tiers.length; index += 1) {
      const previous = tiers[index - 1] as Tier;
      const tier = tiers[index] as Tier;
      if (tier.minSpendFen <= previous.minSpendFen) {
        context.addIssue({
          code: 'custom',
          path: [index, 'minSpendFen'],
          message: 'tiers must be in strictly increasing minSpendFen order',
        });
      }
    }
    const names = new Set<string>();
    tiers.forEach((tier, index) => {
      if (names.has(tier.name)) {
        context.addIssue({ code: 'custom', path: [index, 'name'], message: 'tier names must be distinct' });
      }
      names.add(tier.name);
    });
  });

const expirySchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('end-of-following-year') }),
  z.strictObject({ kind: z.literal('days'), days: z.int().min(1).max(EXPIRY_DAYS_MAX) }),
]);

/**
 * `version` defaults to 1 so a first programme file may omit it; a change must name current + 1.
 */
export const programmeSchema = z.strictObject({
  version: z.int().min(1).default(1),
  pointsPerYuan: z.int().min(1).max(PROGRAMME_POINTS_PER_YUAN_MAX).default(1),
  excludedCategories: z
    .array(z.string().min(1).max(CATEGORY_CHARS_MAX))
    .max(PROGRAMME_EXCLUDED_CATEGORIES_MAX)
    .default([]),
  tiers: tiersSchema.default(DEFAULT_TIERS.map((tier) => ({ ...tier }))),
  expiry: expirySchema.default({ kind: 'end-of-following-year' }),
  pointValueFen: z.int().min(1).max(POINT_VALUE_FEN_MAX).default(1),
  refundWindowDays: z.int().min(1).max(REFUND_WINDOW_DAYS_MAX).default(365),
  clawback: z.enum(['debt', 'cap-at-zero']).default('debt'),
});

export type ProgrammeInput = z.input<typeof programmeSchema>;

// The hand-written type and the schema must agree; this line fails to compile if they drift.
const _schemaMatchesType: (parsed: z.output<typeof programmeSchema>) => Programme = (parsed) => parsed;
void _schemaMatchesType;

export function defaultProgramme(): Programme {
  return programmeSchema.parse({});
}

/** The highest tier whose threshold the spend reaches (tiers are sorted, the first starts at 0). */
export function tierFor(spendFen: number, programme: Programme): Tier {
  assertFen(spendFen, 'spendFen');
  let reached = programme.tiers[0];
  assert(reached !== undefined && reached.minSpendFen === 0, 'programme has no tier starting at 0');
  for (const tier of programme.tiers) {
    if (tier.minSpendFen <= spendFen) reached = tier;
  }
  return reached;
}

export function tierNamed(name: string, programme: Programme): Tier | undefined {
  return programme.tiers.find((tier) => tier.name === name);
}

/** When a lot credited at `earnedAtIso` (the ledger's recording time) expires. */
export function lotExpiresAt(earnedAtIso: IsoInstant, programme: Programme, timeZone: string): IsoInstant {
  const expiry = programme.expiry;
  switch (expiry.kind) {
    case 'end-of-following-year':
      return startOfLocalYearIso(localYear(earnedAtIso, timeZone) + 2, timeZone);
    case 'days':
      return startOfLocalDateIso(
        addDaysToLocalDate(localDate(earnedAtIso, timeZone), expiry.days + 1),
        timeZone,
      );
    default:
      return assertNever(expiry, 'expiry kind');
  }
}
