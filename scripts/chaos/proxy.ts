import net from 'node:net';
import type { Rng } from './rng.ts';

/** How long the proxy waits for an upstream to accept before it tries the next one. */
const UPSTREAM_CONNECT_TIMEOUT_MS = 2_000;

interface Pair {
  client: net.Socket;
  upstream: net.Socket | null;
  stalled: boolean;
}

/**
 * A TCP proxy on 127.0.0.1 between two parties of the run (POS clients and the API processes, or the
 * ledger processes and the database). New connections go to the upstreams in turn, skipping one that
 * refuses (a killed API process), like a load balancer would. `cutOne` severs one live connection at random,
 * both halves at once, half the time with a reset (RST), half the time with a close (FIN): the two ways a
 * network or a middlebox drops a connection in practice. `stallOne` holds one connection's bytes for a while.
 */
export class ChaosProxy {
  private server: net.Server | null = null;
  private readonly pairs = new Set<Pair>();
  private turn = 0;
  private frozen = false;
  readonly stats = { accepted: 0, cuts: 0, stalls: 0, upstreamRefused: 0 };
  port = 0;

  constructor(
    readonly name: string,
    private readonly upstreams: () => readonly number[],
  ) {}

  async listen(): Promise<number> {
    const server = net.createServer((client) => this.accept(client));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    this.server = server;
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error(`${this.name}: no port`);
    this.port = address.port;
    return this.port;
  }

  /** Connections open now. */
  get open(): number {
    return this.pairs.size;
  }

  /** Severs one live connection chosen at random; false when none is open. */
  cutOne(rng: Rng): boolean {
    const live = [...this.pairs].filter((pair) => pair.upstream !== null);
    if (live.length === 0) return false;
    const pair = rng.pick(live);
    const reset = rng.chance(0.5);
    for (const socket of [pair.client, pair.upstream]) {
      if (socket === null || socket.destroyed) continue;
      if (reset) socket.resetAndDestroy();
      else socket.destroy();
    }
    this.pairs.delete(pair);
    this.stats.cuts += 1;
    return true;
  }

  /**
   * Stops forwarding on one live connection, both ways, for `ms`, then carries on (a congested or flapping
   * link). Past the other side's timeout, the request is in flight while its sender has given up on it.
   */
  stallOne(rng: Rng, ms: number): boolean {
    const live = [...this.pairs].filter((pair) => pair.upstream !== null && !pair.stalled);
    if (live.length === 0) return false;
    const pair = rng.pick(live);
    this.hold(pair);
    const timer = setTimeout(() => {
      if (!this.frozen) this.release(pair);
    }, ms);
    timer.unref();
    this.stats.stalls += 1;
    return true;
  }

  private hold(pair: Pair): void {
    const upstream = pair.upstream;
    if (upstream === null || pair.stalled) return;
    pair.stalled = true;
    pair.client.unpipe(upstream);
    upstream.unpipe(pair.client);
    pair.client.pause();
    upstream.pause();
  }

  private release(pair: Pair): void {
    const upstream = pair.upstream;
    if (upstream === null || !pair.stalled) return;
    pair.stalled = false;
    if (pair.client.destroyed || upstream.destroyed) return;
    pair.client.pipe(upstream);
    upstream.pipe(pair.client);
  }

  /**
   * Stops forwarding on every connection, and holds new ones unforwarded, until `thaw` (a partition that
   * drops nothing, the far side simply hears nothing).
   */
  freeze(): void {
    this.frozen = true;
    for (const pair of this.pairs) this.hold(pair);
  }

  thaw(): void {
    this.frozen = false;
    for (const pair of this.pairs) this.release(pair);
  }

  async close(): Promise<void> {
    for (const pair of this.pairs) {
      pair.client.destroy();
      pair.upstream?.destroy();
    }
    this.pairs.clear();
    const server = this.server;
    this.server = null;
    if (server !== null) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private accept(client: net.Socket): void {
    this.stats.accepted += 1;
    client.pause();
    const pair: Pair = { client, upstream: null, stalled: false };
    this.pairs.add(pair);
    const end = () => {
      this.pairs.delete(pair);
      client.destroy();
      pair.upstream?.destroy();
    };
    client.on('error', end);
    client.on('close', end);
    const ports = this.upstreams();
    const start = this.turn++;
    const attempt = (tries: number) => {
      if (client.destroyed) return;
      if (tries >= ports.length) {
        end();
        return;
      }
      const port = ports[(start + tries) % ports.length]!;
      const upstream = net.connect({ host: '127.0.0.1', port });
      upstream.setTimeout(UPSTREAM_CONNECT_TIMEOUT_MS);
      const refused = () => {
        upstream.destroy();
        this.stats.upstreamRefused += 1;
        attempt(tries + 1);
      };
      upstream.once('timeout', refused);
      upstream.once('error', refused);
      upstream.once('connect', () => {
        upstream.removeListener('timeout', refused);
        upstream.removeListener('error', refused);
        upstream.setTimeout(0);
        if (client.destroyed) {
          upstream.destroy();
          return;
        }
        pair.upstream = upstream;
        upstream.on('error', end);
        upstream.on('close', end);
        if (this.frozen) {
          pair.stalled = true;
          upstream.pause();
          return;
        }
        client.pipe(upstream);
        upstream.pipe(client);
        client.resume();
      });
    };
    attempt(0);
  }
}
