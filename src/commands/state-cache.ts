/**
 * The command side's memory of the streams it wrote last: (version, state) per stream, least recently used
 * out first, within a byte budget. A hit saves the snapshot read, the one database round trip a command
 * made besides its share of a group-committed append (BENCHMARKS.md, "bench:api").
 *
 * A cached state is never trusted on its own. It can only be behind the store (another process appended
 * since), never ahead or different, because an entry is written only after its append committed, and
 * states are immutable values. Behind is caught twice: an append decided on it carries the cached
 * version as its expected version and fails the store's check; and any answer that appends nothing (a
 * refusal, a no-op) is decided again from the store before it is given (run-command.ts).
 */
export const COMMAND_STATE_CACHE_BYTES = 128 * 1024 * 1024;
/** One state may take at most this share of the budget; a larger one is not kept. */
const ENTRY_SHARE_MAX = 1 / 16;

interface Entry {
  version: number;
  state: unknown;
  bytes: number;
}

export class StreamStateCache {
  private readonly entries = new Map<string, Entry>();
  private bytes = 0;

  constructor(private readonly capacityBytes: number = COMMAND_STATE_CACHE_BYTES) {}

  get<S>(key: string): { version: number; state: S } | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    // Map keeps insertion order: re-inserting marks the entry most recently used.
    this.entries.delete(key);
    this.entries.set(key, entry);
    return { version: entry.version, state: entry.state as S };
  }

  set(key: string, version: number, state: unknown, bytes: number): void {
    this.delete(key);
    if (bytes > this.capacityBytes * ENTRY_SHARE_MAX) return;
    this.entries.set(key, { version, state, bytes });
    this.bytes += bytes;
    for (const [oldest, entry] of this.entries) {
      if (this.bytes <= this.capacityBytes) break;
      this.entries.delete(oldest);
      this.bytes -= entry.bytes;
    }
  }

  delete(key: string): void {
    const entry = this.entries.get(key);
    if (entry === undefined) return;
    this.entries.delete(key);
    this.bytes -= entry.bytes;
  }

  get size(): { entries: number; bytes: number } {
    return { entries: this.entries.size, bytes: this.bytes };
  }
}
