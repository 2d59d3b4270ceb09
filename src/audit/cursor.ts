import { assert } from '../domain/assert.ts';

/**
 * One ordered query read page by page (keyset pagination: each page starts after the last row of the
 * previous one), consumed a row at a time with one row of lookahead. Memory is at most two pages (the one
 * being consumed and the next, fetched while the current one is consumed) whatever the table's size.
 *
 * `peek` and `next` are synchronous so the merge join costs no promise per row (at a million events a
 * second of audit, an await per row is a measurable share of the time); the caller awaits `ready()` first,
 * which resolves at once unless the page is used up. The order is asserted as rows arrive: a merge join
 * over cursors is only right if every cursor is really sorted the way the code compares keys, so a
 * collation surprise stops the audit loudly instead of producing false discrepancies.
 */
export class KeysetCursor<R> {
  private rows: R[] = [];
  private index = 0;
  /** The page being fetched after `rows`, or null when `rows` was the last (short) page. */
  private pending: Promise<R[]> | null;
  private last: R | null = null;

  constructor(
    private readonly fetchPage: (after: R | null, limit: number) => Promise<R[]>,
    private readonly pageRows: number,
    /** Negative when a sorts before b; must agree with the query's ORDER BY. */
    private readonly compare: (a: R, b: R) => number,
    private readonly name: string,
  ) {
    this.pending = handled(fetchPage(null, pageRows));
  }

  /** True when peek/next can answer without a round trip. */
  get isReady(): boolean {
    return this.index < this.rows.length || this.pending === null;
  }

  /** Waits for the next page when the current one is used up (at once otherwise). */
  async ready(): Promise<void> {
    while (this.index >= this.rows.length && this.pending !== null) {
      const page = await this.pending;
      this.rows = page;
      this.index = 0;
      // A full page may have a successor: fetch it now, while this one is consumed.
      this.pending =
        page.length < this.pageRows ? null : handled(this.fetchPage(page[page.length - 1]!, this.pageRows));
    }
  }

  /** The next row without consuming it; undefined at the end. Call after `ready()`. */
  peek(): R | undefined {
    assert(this.isReady, `${this.name}: peek before ready()`);
    return this.rows[this.index];
  }

  /** Consumes the next row; undefined at the end. Call after `ready()`. */
  next(): R | undefined {
    const row = this.peek();
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

/**
 * A page fetched ahead may fail while nobody awaits it yet (or ever, when the unit stops on another error):
 * the failure still reaches whoever awaits it, but is never an unhandled rejection that kills the process.
 */
function handled<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => undefined);
  return promise;
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
