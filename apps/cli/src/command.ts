/**
 * What a command module receives and exports. Types only at runtime cost: a tiny class for typed option access.
 * @module
 */
import type { Output } from './output.js';

/** The process surroundings a command runs in (the real process in `bin.ts`). */
export interface CommandIO {
  readonly stdin: NodeJS.ReadStream;
  readonly stdout: NodeJS.WriteStream;
  readonly stderr: NodeJS.WriteStream;
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
}

export interface CommandContext extends CommandIO {
  /** Full command name (`encrypt`, `provider probe`), for messages. */
  readonly name: string;
  readonly args: ParsedArgs;
  readonly out: Output;
  /** Absolute configuration directory (`--dir`, else `$KEYFOLD_DIR`, else `./.keyfold`). */
  readonly dir: string;
  /** Positional arguments before `--` (only for commands whose spec sets `positionals`). */
  readonly positionals?: readonly string[];
  /** Arguments after `--`, verbatim (only for commands whose spec sets `positionals`). */
  readonly rest?: readonly string[];
}

/** A command module exports `run`; it returns the exit status (0 when it returns nothing) or throws. */
export interface CommandModule {
  run(ctx: CommandContext): Promise<number | undefined>;
}

type RawValue = string | boolean | (string | boolean)[] | undefined;

/** Typed access to the option values `parseArgs` produced (it types them loosely). */
export class ParsedArgs {
  readonly #values: Readonly<Record<string, RawValue>>;

  constructor(values: Readonly<Record<string, RawValue>>) {
    this.#values = values;
  }

  /** A string option's value, or undefined when absent. */
  string(name: string): string | undefined {
    const v = this.#values[name];
    return typeof v === 'string' ? v : undefined;
  }

  /** A boolean option: true when given. */
  flag(name: string): boolean {
    return this.#values[name] === true;
  }

  /** Every value of a repeatable string option, in order. */
  list(name: string): string[] {
    const v = this.#values[name];
    if (Array.isArray(v)) return v.filter((x): x is string => typeof x === 'string');
    return typeof v === 'string' ? [v] : [];
  }
}
