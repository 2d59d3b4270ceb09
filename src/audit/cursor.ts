import { assert } from '../domain/assert.ts';

/**
 * One ordered query read page by page (keyset pagination: each page starts after the last row of the
 * previous one), consumed a row at a time with one row of lookahead. Memory is one page whatever the
 * table's size. The order is asserted as rows arrive: a merge join over cursors is only right if every
 * cursor is really sorted the way the code compares keys, so a collation surprise stops the audit loudly
 * instead of producing false discrepancies.
 */
export class KeysetCursor<R> {
  private rows: R[] = [];
  private index = 0;
  private exhausted = false;
  private last: R | null = null;

  constructor(
    private readonly fetchPage: (after: R | null, limit: number) => Promise<R[]>,
    private readonly pageRows: number,
    /** Negative when a sorts before b; must agree with the query's ORDER BY. */
    private readonly compare: (a: R, b: R) => number,
    private readonly name: string,
  ) {}

  async peek(): Promise<R | undefined> {
    if (this.index < this.rows.length) return this.rows[this.index];
    if (this.exhausted) return undefined;
    const page = await this.fetchPage(this.last, this.pageRows);
    this.rows = page;
    this.index = 0;
    if (page.length < this.pageRows) this.exhausted = true;
    return this.rows[0];
  }

  async next(): Promise<R | undefined> {
    const row = await this.peek();
    if (row === undefined) return undefined;
    this.index += 1;
    assert(
      this.last === null || this.compare(this.last, row) < 0,
      `${this.name}: rows out of order (check the collation: utf8mb4_bin expected)`,
    );
    this.last = row;
    return row;
  }
}

/** Code-point order, which is utf8mb4_bin's byte order (JS `<` compares UTF-16 units and differs above U+FFFF). */
export function compareKeys(a: string, b: string): number {
  if (a === b) return 0;
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const x = a.codePointAt(i)!;
    const y = b.codePointAt(i)!;
    if (x !== y) return x < y ? -1 : 1;
    if (x > 0xffff) i += 1;
  }
  return a.length < b.length ? -1 : 1;
}
