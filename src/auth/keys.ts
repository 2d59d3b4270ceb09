import { hash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { RowDataPacket } from 'mysql2/promise';
import type { Clock } from '../clock.ts';
import { isoToSqlTime, type Pool } from '../db/pool.ts';
import { isRole, type Principal, type Role } from './roles.ts';

/**
 * Key format: `pl.<tenantId>.<keyId>.<secret>`; keyId is 16 hex chars, secret 43 base64url chars (256 bits).
 * Tenant ids never contain '.', base64url never does, so the split is unambiguous.
 */
const KEY_PREFIX = 'pl';
const KEY_ID_BYTES = 8;
const SECRET_BYTES = 32;
/** Stores one pos key may be bound to. */
export const KEY_STORES_MAX = 1_000;
/** A key's row is cached this long; a revoked key stops working within it. */
const KEY_CACHE_TTL_MS = 30_000;
const KEY_CACHE_ENTRIES_MAX = 10_000;

export const TENANT_ID_PATTERN = /^[a-z0-9][a-z0-9-]{0,63}$/;
export const STORE_ID_PATTERN = /^[\x21-\x7e]{1,128}$/;

function sha256(text: string): Buffer {
  return hash('sha256', text, 'buffer');
}

export interface CreatedKey {
  key: string;
  keyId: string;
}

export async function createKey(
  pool: Pool,
  clock: Clock,
  input: { tenantId: string; role: Role; stores: readonly string[] },
): Promise<CreatedKey> {
  if (!TENANT_ID_PATTERN.test(input.tenantId)) throw new Error(`bad tenant id: ${input.tenantId}`);
  if (input.role === 'pos' && input.stores.length === 0)
    throw new Error('a pos key needs at least one --store');
  if (input.role !== 'pos' && input.stores.length > 0) throw new Error('only pos keys are bound to stores');
  if (input.stores.length > KEY_STORES_MAX) throw new Error(`at most ${KEY_STORES_MAX} stores per key`);
  for (const store of input.stores)
    if (!STORE_ID_PATTERN.test(store)) throw new Error(`bad store id: ${store}`);
  const keyId = randomBytes(KEY_ID_BYTES).toString('hex');
  const secret = randomBytes(SECRET_BYTES).toString('base64url');
  await pool.query(
    'INSERT INTO api_keys (tenant_id, key_id, secret_sha256, role, stores, created_at) VALUES (?, ?, ?, ?, ?, ?)',
    [
      input.tenantId,
      keyId,
      sha256(secret).toString('hex'),
      input.role,
      JSON.stringify([...new Set(input.stores)].sort()),
      isoToSqlTime(clock.nowIso()),
    ],
  );
  return { key: `${KEY_PREFIX}.${input.tenantId}.${keyId}.${secret}`, keyId };
}

interface CachedKey {
  principal: Principal | null;
  secretSha256: Buffer | null;
  loadedAtMs: number;
}

/** Resolves bearer keys to principals; caches rows briefly so the till does not pay a lookup per request. */
export class KeyVerifier {
  private readonly cache = new Map<string, CachedKey>();

  constructor(private readonly pool: Pool) {}

  async verify(key: string): Promise<Principal | null> {
    const parts = key.split('.');
    if (parts.length !== 4 || parts[0] !== KEY_PREFIX) return null;
    const [, tenantId = '', keyId = '', secret = ''] = parts;
    if (
      !TENANT_ID_PATTERN.test(tenantId) ||
      !/^[0-9a-f]{16}$/.test(keyId) ||
      !/^[A-Za-z0-9_-]{43}$/.test(secret)
    ) {
      return null;
    }
    const cacheKey = `${tenantId}.${keyId}`;
    let entry = this.cache.get(cacheKey);
    if (entry === undefined || Date.now() - entry.loadedAtMs > KEY_CACHE_TTL_MS) {
      entry = await this.load(tenantId, keyId);
      if (this.cache.size >= KEY_CACHE_ENTRIES_MAX) this.cache.clear();
      this.cache.set(cacheKey, entry);
    }
    if (entry.principal === null || entry.secretSha256 === null) return null;
    return timingSafeEqual(entry.secretSha256, sha256(secret)) ? entry.principal : null;
  }

  private async load(tenantId: string, keyId: string): Promise<CachedKey> {
    const [rows] = await this.pool.query<RowDataPacket[]>(
      'SELECT secret_sha256, role, stores, revoked_at FROM api_keys WHERE tenant_id = ? AND key_id = ?',
      [tenantId, keyId],
    );
    const row = rows[0];
    const role = String(row?.['role'] ?? '');
    if (row === undefined || row['revoked_at'] !== null || !isRole(role)) {
      return { principal: null, secretSha256: null, loadedAtMs: Date.now() };
    }
    return {
      principal: { tenantId, keyId, role, stores: JSON.parse(String(row['stores'])) as string[] },
      secretSha256: Buffer.from(String(row['secret_sha256']), 'hex'),
      loadedAtMs: Date.now(),
    };
  }
}
