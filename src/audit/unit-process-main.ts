/**
 * The entry point of an audit unit process (started by UnitProcess, unit-process.ts): runs the units it is
 * sent, several at once, with runUnit, the same function the parent runs its own units with, and answers
 * each outcome. Progress goes back in batches, so the IPC channel carries a message per page, not per event.
 */
import { openPool, type Pool } from '../db/pool.ts';
import { runUnit } from './unit.ts';
import type { FromUnitProcess, ToUnitProcess } from './unit-process.ts';

/** Events of progress gathered before a message is sent. */
const PROGRESS_EVENTS_PER_MESSAGE = 5_000;

let pool: Promise<Pool> | null = null;
let running = 0;
let closing = false;

function send(message: FromUnitProcess): void {
  process.send?.(message);
}

async function finish(): Promise<void> {
  if (pool !== null) await (await pool.catch(() => null))?.end();
  process.disconnect?.();
}

async function run(message: Extract<ToUnitProcess, { type: 'run' }>): Promise<void> {
  running += 1;
  const unsent = { chain: 0, member: 0 };
  try {
    pool ??= openPool(message.databaseUrl, message.connections);
    const outcome = await runUnit(await pool, message.job, (pass, count) => {
      unsent[pass] += count;
      if (unsent[pass] < PROGRESS_EVENTS_PER_MESSAGE) return;
      send({ type: 'progress', id: message.id, pass, count: unsent[pass] });
      unsent[pass] = 0;
    });
    for (const pass of ['chain', 'member'] as const) {
      if (unsent[pass] > 0) send({ type: 'progress', id: message.id, pass, count: unsent[pass] });
    }
    send({ type: 'done', id: message.id, outcome });
  } catch (error) {
    send({
      type: 'failed',
      id: message.id,
      message: error instanceof Error ? error.message : String(error),
    });
  } finally {
    running -= 1;
    if (closing && running === 0) await finish();
  }
}

process.on('message', (message: ToUnitProcess) => {
  if (message.type === 'run') {
    void run(message);
  } else {
    closing = true;
    if (running === 0) void finish();
  }
});
// The parent is gone (it crashed or was killed): nothing is left to answer to.
process.on('disconnect', () => {
  if (!closing) process.exit(1);
});
