/** A small argv parser: positionals, `--flag value`, repeated flags, and boolean flags. */
export interface ParsedArgs {
  positionals: string[];
  options: Map<string, string[]>;
}

export class UsageError extends Error {}

export function parseArgs(argv: readonly string[], booleanFlags: readonly string[] = []): ParsedArgs {
  const positionals: string[] = [];
  const options = new Map<string, string[]>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) {
      positionals.push(arg);
      continue;
    }
    const [name, inline] = arg.slice(2).split(/=(.*)/s, 2) as [string, string | undefined];
    let value: string;
    if (booleanFlags.includes(name)) value = inline ?? 'true';
    else if (inline !== undefined) value = inline;
    else {
      const next = argv[i + 1];
      if (next === undefined || next.startsWith('--')) throw new UsageError(`--${name} needs a value`);
      value = next;
      i += 1;
    }
    options.set(name, [...(options.get(name) ?? []), value]);
  }
  return { positionals, options };
}

export function option(args: ParsedArgs, name: string): string | undefined {
  const values = args.options.get(name);
  if (values !== undefined && values.length > 1) throw new UsageError(`--${name} given more than once`);
  return values?.[0];
}

export function requiredOption(args: ParsedArgs, name: string): string {
  const value = option(args, name);
  if (value === undefined) throw new UsageError(`--${name} is required`);
  return value;
}

/** A boolean flag: `--name` (or `--name=true` / `--name=false`); any other value is a usage error. */
export function flag(args: ParsedArgs, name: string): boolean {
  const value = option(args, name);
  if (value === undefined || value === 'false') return false;
  if (value === 'true') return true;
  throw new UsageError(`--${name} takes no value (got '${value}')`);
}

export function onlyOptions(args: ParsedArgs, allowed: readonly string[]): void {
  for (const name of args.options.keys()) {
    if (!allowed.includes(name)) throw new UsageError(`unknown option --${name}`);
  }
}

/** For verbs that take no positional arguments: a stray word (`--store s1 s2`) is an error, not ignored. */
export function noPositionals(args: ParsedArgs): void {
  const [first] = args.positionals;
  if (first !== undefined) throw new UsageError(`unexpected argument ${first}`);
}

/** For verbs that take nothing at all (`start`, `db migrate`): any option or word is a usage error. */
export function noArguments(argv: readonly string[]): void {
  const args = parseArgs(argv);
  onlyOptions(args, []);
  noPositionals(args);
}
