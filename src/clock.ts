/**
 * The one clock. Every recorded time, expiry, tier window and finance period reads it.
 * With LEDGER_CLOCK_START the clock starts at that instant and runs on in real time
 * (demos, rehearsals of period closes, acceptance tests).
 */
export interface Clock {
  /** Now as an ISO-8601 UTC string with milliseconds. */
  nowIso(): string;
  nowMs(): number;
}

export function systemClock(): Clock {
  return { nowMs: () => Date.now(), nowIso: () => new Date().toISOString() };
}

export function clockStartingAt(startIso: string, realNowMs: () => number = Date.now): Clock {
  const startMs = Date.parse(startIso);
  if (!Number.isFinite(startMs)) throw new Error(`clock start is not an instant: ${startIso}`);
  const realStartMs = realNowMs();
  const nowMs = () => startMs + (realNowMs() - realStartMs);
  return { nowMs, nowIso: () => new Date(nowMs()).toISOString() };
}

export function clockFromConfig(clockStart: string | undefined): Clock {
  return clockStart === undefined ? systemClock() : clockStartingAt(clockStart);
}
