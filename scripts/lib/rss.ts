/** Peak resident set size while a phase runs, sampled (the process's maxRSS covers its whole life, this one phase). */
export async function withPeakRss<T>(
  fn: () => Promise<T>,
  intervalMs = 50,
): Promise<{ result: T; peakRssBytes: number }> {
  let peak = process.memoryUsage.rss();
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, intervalMs);
  try {
    const result = await fn();
    peak = Math.max(peak, process.memoryUsage.rss());
    return { result, peakRssBytes: peak };
  } finally {
    clearInterval(timer);
  }
}

export function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(0)} MiB`;
}

/** The process's peak RSS over its life (getrusage maxrss, kB on Linux). */
export function lifetimePeakRssBytes(): number {
  return process.resourceUsage().maxRSS * 1024;
}
