/**
 * Runs tasks one at a time per key, in arrival order. Commands on one member inside one process queue
 * here instead of racing to the database and losing on the version check; races between processes are
 * still settled by the store's expected version.
 */
export class KeyedMutex {
  private readonly tails = new Map<string, Promise<void>>();

  async run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    let release: () => void = () => undefined;
    const current = new Promise<void>((resolve) => (release = resolve));
    const tail = previous.then(() => current);
    this.tails.set(key, tail);
    await previous;
    try {
      return await task();
    } finally {
      release();
      // The map holds only keys with work queued: the last task out removes its key.
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}
