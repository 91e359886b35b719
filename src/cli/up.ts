/** Placeholder until the up subcommand lands (kept so main.ts compiles while work is in progress). */
import type { Command } from 'commander';

export function register(program: Command): void {
  void program;
}
