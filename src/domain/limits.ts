/**
 * Every bound of the domain, as a named constant with its unit last. Nothing in src/domain uses a bare
 * number for a limit; other layers (API schemas, CLI) should import these rather than repeat them.
 */

// Holds: a checkout lasts minutes, so a hold never outlives an hour.
export const HOLD_TTL_SECONDS_DEFAULT = 900;
export const HOLD_TTL_SECONDS_MAX = 3600;
/** Active holds per member; also bounds the holds kept in the member state. */
export const HOLDS_ACTIVE_MAX = 20;

// Orders.
export const ORDER_LINES_MAX = 200;
/** Total of an order's lines (10 million yuan); keeps every product below 2^53 with room to spare. */
export const ORDER_AMOUNT_FEN_MAX = 1_000_000_000;
export const LINE_QUANTITY_MAX = 1_000_000;

/** Points named by one hold, capture, redemption or adjustment. */
export const POINTS_PER_COMMAND_MAX = 100_000_000;
/**
 * Largest balance a member may reach (1e15, well inside Number.MAX_SAFE_INTEGER = 9.007e15), so that
 * sums of balances and postings stay exact integers.
 */
export const BALANCE_POINTS_MAX = 1_000_000_000_000_000;

// Text.
export const REASON_CHARS_MAX = 500;
export const TICKET_CHARS_MAX = 128;
export const ACTOR_CHARS_MAX = 128;
/** orderId, holdId, refundId, adjustmentId, lotId, memberId, storeId: visible ASCII. */
export const ID_CHARS_MAX = 128;
export const SKU_CHARS_MAX = 64;
export const CATEGORY_CHARS_MAX = 64;
export const MEMBER_NAME_CHARS_MAX = 100;
export const TENANT_ID_CHARS_MAX = 64;
export const TENANT_NAME_CHARS_MAX = 200;
export const TIER_NAME_CHARS_MAX = 32;
/** E.164: at most 15 digits after '+'; 8 is the shortest we accept. */
export const PHONE_DIGITS_MIN = 8;
export const PHONE_DIGITS_MAX = 15;

// Time.
/** A POS clock may run a little fast; more than this and occurredAt is rejected. */
export const OCCURRED_AT_FUTURE_SKEW_SECONDS_MAX = 300;
/** Tier spend is the eligible spend over this many days ending now. */
export const TIER_WINDOW_DAYS = 365;
/**
 * An order summary is kept in the member state for max(refundWindowDays, this) days after its
 * purchase (or after the first hold/redemption naming it), so state is bounded by activity in the
 * window and never by history. It is at least the tier window because tier spend is read from it.
 */
export const ORDER_RETENTION_DAYS_MIN = 365;
/** adjustmentIds are remembered in state this long for dedup; the store's unique key covers the rest. */
export const ADJUSTMENT_IDS_RETENTION_DAYS = 365;
export const SECONDS_PER_DAY = 86_400;
export const MS_PER_SECOND = 1_000;
/** Calendar years the time helpers accept (4-digit ISO years). */
export const YEAR_MIN = 1000;
export const YEAR_MAX = 9999;

// Programme.
export const PROGRAMME_POINTS_PER_YUAN_MAX = 100;
export const PROGRAMME_TIERS_MAX = 10;
/** 10x; permille keeps multipliers integer. */
export const TIER_MULTIPLIER_PERMILLE_MAX = 10_000;
export const PROGRAMME_EXCLUDED_CATEGORIES_MAX = 200;
export const EXPIRY_DAYS_MAX = 3650;
export const REFUND_WINDOW_DAYS_MAX = 3650;
export const POINT_VALUE_FEN_MAX = 10_000;
/** Permille and per-yuan scale: points = eligibleFen x pointsPerYuan x permille / (100 fen x 1000). */
export const FEN_PER_YUAN = 100;
export const PERMILLE = 1_000;

// Expiry.
/** Lots named by one LotsExpired event; a run with more due lots emits several events. */
export const LOTS_EXPIRED_PER_EVENT_MAX = 500;
