import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../test/helpers/database.ts';
import { isTransientDatabaseError, openPool } from './pool.ts';

const database = useTestDatabase({ migrate: false });

describe('the connection pool', () => {
  it('fails a request for a connection at once when as many wait as it queues, and serves the waiting', async () => {
    const pool = await openPool(database.current.url, 1, { waitingRequestsMax: 1 });
    try {
      const busy = await pool.getConnection();
      const waiting = pool.getConnection();
      const refused = await pool.getConnection().then(
        () => null,
        (error: unknown) => error,
      );
      expect(refused).toBeInstanceOf(Error);
      expect((refused as Error).message).toBe('Queue limit reached.');
      expect(isTransientDatabaseError(refused)).toBe(true);
      busy.release();
      const served = await waiting;
      const [rows] = await served.query('SELECT 1 AS one');
      expect(rows).toEqual([{ one: 1 }]);
      served.release();
    } finally {
      await pool.end();
    }
  });
});
