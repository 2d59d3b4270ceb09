import type { Config } from '../../config.ts';

export interface Verb {
  /** One line: the verb with its arguments. */
  usage: string;
  summary: string;
  run(args: readonly string[], config: Config): Promise<number>;
}
