import type { Pool, PoolConnection } from '../db/pool.ts';

/**
 * Runs fn on one connection inside a read-only REPEATABLE READ transaction opened WITH CONSISTENT
 * SNAPSHOT: every query fn makes sees the database as of one instant. The projector commits read-model
 * rows together with their checkpoint, and an append commits events with their stream and partition
 * heads, so inside one snapshot those always agree and the audit can compare them exactly while
 * commands and projectors keep running.
 *
 * Cost: the server keeps undo history for as long as the snapshot is open (MySQL/MariaDB purge waits;
 * TiDB needs tidb_gc_life_time longer than the longest audit unit, see docs/audit.md).
 */
export async function withSnapshot<T>(
  pool: Pool,
  fn: (connection: PoolConnection) => Promise<T>,
): Promise<T> {
  const connection = await pool.getConnection();
  try {
    // The pool's sessions run READ COMMITTED (db/pool.ts); this transaction alone needs a snapshot.
    await connection.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ');
    await connection.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
    try {
      return await fn(connection);
    } finally {
      await connection.query('ROLLBACK').catch(() => undefined);
    }
  } finally {
    connection.release();
  }
}
