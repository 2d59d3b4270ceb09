import { readdirSync, readFileSync } from 'node:fs';

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

/** Resident set size of a process, in bytes, from /proc (Linux); 0 when it is gone or /proc is absent. */
function procRssBytes(pid: number): number {
  try {
    // statm counts pages; 4 KiB on the x86-64 and arm64 Linux machines this runs on.
    const statm = readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ');
    return Number(statm[1]) * 4096;
  } catch {
    return 0;
  }
}

/** The process's children, grandchildren and so on (Linux /proc); empty where /proc is absent. */
function descendantPids(pid: number): number[] {
  const found: number[] = [];
  const visit = (parent: number) => {
    let tasks: string[];
    try {
      tasks = readdirSync(`/proc/${parent}/task`);
    } catch {
      return;
    }
    for (const task of tasks) {
      let children: string;
      try {
        children = readFileSync(`/proc/${parent}/task/${task}/children`, 'utf8');
      } catch {
        continue;
      }
      for (const child of children.split(' ').filter((id) => id !== '')) {
        found.push(Number(child));
        visit(Number(child));
      }
    }
  };
  visit(pid);
  return found;
}

/**
 * Peak resident set size of this process and every process it started (the audit's unit processes), summed
 * at each sample: what the machine had to hold at once. Linux only (/proc); elsewhere this process alone.
 */
export async function withPeakTreeRss<T>(
  fn: () => Promise<T>,
  intervalMs = 50,
): Promise<{ result: T; peakRssBytes: number; peakProcesses: number }> {
  let peak = process.memoryUsage.rss();
  let peakProcesses = 1;
  const sample = () => {
    const children = descendantPids(process.pid);
    const total = process.memoryUsage.rss() + children.reduce((sum, pid) => sum + procRssBytes(pid), 0);
    peak = Math.max(peak, total);
    peakProcesses = Math.max(peakProcesses, 1 + children.length);
  };
  const timer = setInterval(sample, intervalMs);
  try {
    const result = await fn();
    sample();
    return { result, peakRssBytes: peak, peakProcesses };
  } finally {
    clearInterval(timer);
  }
}

/** CPU seconds used so far by a process and every process under it (a launcher and the server it runs). */
export function treeCpuSeconds(pid: number): number {
  return [pid, ...descendantPids(pid)].reduce((sum, each) => sum + procCpuSeconds(each), 0);
}

/** CPU time (user + system) a process has used so far, in seconds, from /proc (Linux); 0 when it is gone. */
export function procCpuSeconds(pid: number): number {
  try {
    // The command name may hold spaces and parentheses; the fields after its closing ')' are fixed.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of stat(5), 11 and 12 after the name; clock ticks of 1/100 s.
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

/** The pid of the local MariaDB or MySQL server when it runs on this machine, else undefined. */
export function localDatabaseServerPid(): number | undefined {
  try {
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const name = readFileSync(`/proc/${entry}/comm`, 'utf8').trim();
        if (name === 'mariadbd' || name === 'mysqld') return Number(entry);
      } catch {
        // the process ended while we looked
      }
    }
  } catch {
    // no /proc
  }
  return undefined;
}
