import { createHash, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import { join } from 'node:path';

/** One file of the export: written line by line with backpressure, hashed and counted as it is written. */
export class HashedFileWriter {
  private readonly stream: WriteStream;
  private readonly hash: Hash = createHash('sha256');
  private buffered: string[] = [];
  private bufferedChars = 0;
  /** Data lines written (a CSV header is not a row). */
  rows = 0;
  bytes = 0;

  constructor(
    readonly directory: string,
    readonly name: string,
  ) {
    this.stream = createWriteStream(join(directory, name), { flags: 'wx' });
  }

  /** Lines are gathered into ~64 KiB writes: one syscall per few hundred rows, not per row. */
  async line(text: string, isRow = true): Promise<void> {
    this.buffered.push(text, '\n');
    this.bufferedChars += text.length + 1;
    if (isRow) this.rows += 1;
    if (this.bufferedChars >= 65_536) await this.flush();
  }

  async text(content: string): Promise<void> {
    this.buffered.push(content);
    this.bufferedChars += content.length;
    await this.flush();
  }

  private async flush(): Promise<void> {
    if (this.buffered.length === 0) return;
    const chunk = Buffer.from(this.buffered.join(''), 'utf8');
    this.buffered = [];
    this.bufferedChars = 0;
    this.hash.update(chunk);
    this.bytes += chunk.length;
    if (!this.stream.write(chunk)) await once(this.stream, 'drain');
  }

  /** Flushes, closes (fsync'd by close on the rename that follows), and returns the file's sha256. */
  async close(): Promise<{ name: string; rows: number; bytes: number; sha256: string }> {
    await this.flush();
    this.stream.end();
    await once(this.stream, 'finish');
    await new Promise<void>((resolve, reject) =>
      this.stream.close((error) => (error ? reject(error) : resolve())),
    );
    return { name: this.name, rows: this.rows, bytes: this.bytes, sha256: this.hash.digest('hex') };
  }

  /** Stops writing after a failure; the caller removes the directory. */
  destroy(): void {
    this.stream.destroy();
  }
}

/** The sha256 of a file as it is on disk now (the manifest is checked against the files after writing). */
export async function sha256OfFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** RFC 4180: a field with a comma, quote or line break is quoted, quotes doubled. */
export function csvField(value: string | number): string {
  const text = String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}
