/**
 * Phone numbers are member identity at the till, so one spelling per number: E.164 ('+8613812345678').
 * The store's unique key (tenant, phone) is on the normalised form.
 */
import { assert } from '../assert.ts';
import { PHONE_DIGITS_MAX, PHONE_DIGITS_MIN } from '../limits.ts';

const E164_PATTERN = new RegExp(`^\\+[1-9]\\d{${PHONE_DIGITS_MIN - 1},${PHONE_DIGITS_MAX - 1}}$`);
/** Mainland mobile numbers: 11 digits starting with 1, written without the country code. */
const CN_MOBILE_PATTERN = /^1\d{10}$/;
const PHONE_CHARS_MAX = 32;

/**
 * '138 1234-5678' -> '+8613812345678'; '+44 20 7946 0958' -> '+442079460958'. Spaces and dashes are
 * dropped; anything else that is not an 11-digit mainland mobile or '+' and 8-15 digits is null.
 */
export function normalizePhone(raw: string): string | null {
  if (typeof raw !== 'string' || raw.length > PHONE_CHARS_MAX) return null;
  const compact = raw.replace(/[\s-]/g, '');
  if (CN_MOBILE_PATTERN.test(compact)) return `+86${compact}`;
  if (E164_PATTERN.test(compact)) return compact;
  return null;
}

export function isNormalizedPhone(phone: string): boolean {
  return E164_PATTERN.test(phone);
}

// E.164 country codes are prefix-free: 1 and 7 are the one-digit codes, these the two-digit ones,
// and every other code has three digits. That is enough to split a number without a phone library.
const COUNTRY_CODES_ONE_DIGIT = new Set(['1', '7']);
const COUNTRY_CODES_TWO_DIGITS = new Set(
  (
    '20 27 30 31 32 33 34 36 39 40 41 43 44 45 46 47 48 49 51 52 53 54 55 56 57 58 ' +
    '60 61 62 63 64 65 66 81 82 84 86 90 91 92 93 94 95 98'
  ).split(' '),
);
const MASK_DIGITS_MIN = 4;
const KEEP_HEAD_DIGITS = 3;
const KEEP_TAIL_DIGITS = 4;

function countryCodeLength(digits: string): number {
  if (COUNTRY_CODES_ONE_DIGIT.has(digits.slice(0, 1))) return 1;
  if (COUNTRY_CODES_TWO_DIGITS.has(digits.slice(0, 2))) return 2;
  return 3;
}

/**
 * '+8613812345678' -> '+86138****5678': the country code, the first 3 and last 4 national digits. At
 * least 4 digits are always masked, so short numbers keep fewer digits in the clear.
 */
export function maskPhone(phone: string): string {
  assert(isNormalizedPhone(phone), 'maskPhone expects a normalised phone');
  const digits = phone.slice(1);
  const codeLength = countryCodeLength(digits);
  const national = digits.slice(codeLength);
  const masked = Math.max(
    national.length - KEEP_HEAD_DIGITS - KEEP_TAIL_DIGITS,
    Math.min(MASK_DIGITS_MIN, national.length),
  );
  const kept = national.length - masked;
  const tail = Math.min(KEEP_TAIL_DIGITS, kept);
  const head = kept - tail;
  return `+${digits.slice(0, codeLength)}${national.slice(0, head)}${'*'.repeat(masked)}${national.slice(national.length - tail)}`;
}
