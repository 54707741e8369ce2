/**
 * Dispatch: find the command in the table, answer `--help` / `--version` / `help` from the table alone, parse the
 * options strictly with `node:util` `parseArgs`, then import the command module and run it. Every failure ends in
 * {@link main}'s one catch, which prints it and returns the exit status from `exit-codes.ts`.
 * @module
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ParsedArgs, type CommandIO } from './command.js';
import { COMMANDS, GLOBAL_OPTIONS, isGroup, type CommandSpec, type GroupSpec, type OptionSpecs } from './command-specs/table.js';
import { ExitCode, exitCodeFor, UsageError } from './exit-codes.js';
import { commandHelp, globalHelp, groupHelp } from './help.js';
import { Output } from './output.js';

/** Global options that take a value: the pre-scan must skip their value to find the command word. */
const GLOBAL_VALUE_OPTIONS = new Set(
  Object.entries(GLOBAL_OPTIONS).flatMap(([name, spec]) =>
    spec.type === 'string' ? [`--${name}`, ...(spec.short === undefined ? [] : [`-${spec.short}`])] : [],
  ),
);

interface Word {
  readonly value: string;
  readonly index: number;
}

/** Positional words of `argv` (before `--`), skipping options and the values of global options. */
function positionalWords(argv: readonly string[], from = 0): Word[] {
  const words: Word[] = [];
  for (let i = from; i < argv.length; i++) {
    const token = argv[i] as string;
    if (token === '--') break;
    if (token.startsWith('-') && token !== '-') {
      if (GLOBAL_VALUE_OPTIONS.has(token)) i++;
      continue;
    }
    words.push({ value: token, index: i });
  }
  return words;
}

function toParseArgsOptions(options: OptionSpecs): NonNullable<ParseArgsConfig['options']> {
  const result: NonNullable<ParseArgsConfig['options']> = {};
  for (const [name, spec] of Object.entries(options)) {
    result[name] = {
      type: spec.type,
      ...(spec.short === undefined ? {} : { short: spec.short }),
      ...(spec.multiple === true ? { multiple: true } : {}),
    };
  }
  return result;
}

function parse(args: readonly string[], options: OptionSpecs, command: string | undefined, positionals: boolean) {
  try {
    return parseArgs({
      args: [...args],
      options: toParseArgsOptions({ ...GLOBAL_OPTIONS, ...options }),
      strict: true,
      allowPositionals: positionals,
    });
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_')) {
      const first = (err as Error).message.split('\n')[0] ?? 'invalid arguments';
      throw new UsageError(first.replace(/\. This command does not take positional arguments$/, ''), command);
    }
    throw err;
  }
}

function closest(word: string, candidates: readonly string[]): string | undefined {
  const distance = (a: string, b: string): number => {
    const row = Array.from({ length: b.length + 1 }, (_, j) => j);
    for (let i = 1; i <= a.length; i++) {
      let prev = row[0] as number;
      row[0] = i;
      for (let j = 1; j <= b.length; j++) {
        const cur = row[j] as number;
        row[j] = Math.min(cur + 1, (row[j - 1] as number) + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
        prev = cur;
      }
    }
    return row[b.length] as number;
  };
  let best: string | undefined;
  let bestDistance = 3;
  for (const c of candidates) {
    const d = distance(word, c);
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}

function unknownCommand(word: string, within?: GroupSpec): UsageError {
  const names = Object.keys(within === undefined ? COMMANDS : within.subcommands);
  const suggestion = closest(word, names);
  const what = within === undefined ? 'command' : `${within.name} subcommand`;
  const hint = suggestion === undefined ? '' : `; did you mean '${within === undefined ? '' : `${within.name} `}${suggestion}'?`;
  return new UsageError(`unknown ${what} '${word}'${hint}`, within?.name);
}

/** Resolves `help` arguments (`help`, `help encrypt`, `help provider probe`) to the help text to show. */
function helpFor(words: readonly string[], out: Output): string {
  const [first, second] = words;
  if (first === undefined) return globalHelp(out.out);
  const spec = COMMANDS[first];
  if (spec === undefined) throw unknownCommand(first);
  if (!isGroup(spec)) {
    if (second !== undefined) throw new UsageError(`'${first}' has no subcommand '${second}'`, 'help');
    return commandHelp(spec, out.out);
  }
  if (second === undefined) return groupHelp(spec, out.out);
  const sub = spec.subcommands[second];
  if (sub === undefined) throw unknownCommand(second, spec);
  return commandHelp(sub, out.out);
}

/** The CLI version, read from the package manifest next to `dist/` (only when asked for). */
function version(): string {
  const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: unknown };
  return typeof manifest.version === 'string' ? manifest.version : 'unknown';
}

async function dispatch(argv: readonly string[], io: CommandIO, out: Output): Promise<number> {
  const end = argv.indexOf('--');
  const optionPart = end === -1 ? argv : argv.slice(0, end);
  const wantsHelp = optionPart.includes('--help') || optionPart.includes('-h');
  const wantsVersion = optionPart.includes('--version') || optionPart.includes('-V');

  const words = positionalWords(argv);
  const first = words[0];
  if (first === undefined) {
    parse(argv, {}, undefined, false);
    if (wantsVersion && !wantsHelp) {
      out.result({ version: version() }, () => version());
      return ExitCode.OK;
    }
    out.text(globalHelp(out.out));
    return ExitCode.OK;
  }

  const top = COMMANDS[first.value];
  if (top === undefined) throw unknownCommand(first.value);

  if (first.value === 'help') {
    const rest = argv.filter((_, i) => i !== first.index);
    const parsed = parse(rest, {}, 'help', true);
    // `keyfold help --help` describes `help` itself; `keyfold help encrypt --help` still means encrypt.
    const aboutHelp = parsed.positionals.length === 0 && wantsHelp && !isGroup(top);
    out.text(aboutHelp ? commandHelp(top, out.out) : helpFor(parsed.positionals, out));
    return ExitCode.OK;
  }

  let spec: CommandSpec;
  const used = new Set<number>([first.index]);
  if (isGroup(top)) {
    const sub = words[1];
    if (sub === undefined) {
      if (wantsHelp) {
        out.text(groupHelp(top, out.out));
        return ExitCode.OK;
      }
      const names = Object.keys(top.subcommands).join(', ');
      throw new UsageError(`'${top.name}' needs a subcommand: ${names}`, top.name);
    }
    const found = top.subcommands[sub.value];
    if (found === undefined) throw unknownCommand(sub.value, top);
    spec = found;
    used.add(sub.index);
  } else {
    spec = top;
  }

  if (wantsHelp) {
    out.text(commandHelp(spec, out.out));
    return ExitCode.OK;
  }
  if (wantsVersion) {
    out.result({ version: version() }, () => version());
    return ExitCode.OK;
  }

  const parsed = parse(
    argv.filter((_, i) => !used.has(i)),
    spec.options,
    spec.name,
    spec.positionals === true,
  );
  const args = new ParsedArgs(parsed.values);
  const rest = end === -1 ? [] : argv.slice(end + 1);
  const positionals = parsed.positionals.slice(0, parsed.positionals.length - rest.length);
  const dirOption = args.string('dir') ?? io.env.KEYFOLD_DIR;
  if (dirOption === '') throw new UsageError('--dir (or KEYFOLD_DIR) must not be empty', spec.name);
  const dir = resolve(io.cwd, dirOption ?? '.keyfold');

  if (spec.load === undefined) throw new UsageError(`'${spec.name}' cannot be run directly`, spec.name);
  const module = await spec.load();
  const status = await module.run({
    name: spec.name,
    args,
    out,
    dir,
    ...(spec.positionals === true ? { positionals, rest } : {}),
    env: io.env,
    cwd: io.cwd,
    // Getters: touching process.stdin creates the stream, which only commands that read input need.
    get stdin() {
      return io.stdin;
    },
    get stdout() {
      return io.stdout;
    },
    get stderr() {
      return io.stderr;
    },
  });
  return status ?? ExitCode.OK;
}

/**
 * Runs the CLI for `argv` (without `node` and the script path) and returns the exit status. Never throws: every
 * failure is printed (`keyfold: <message> [CODE]`, or JSON with `--json`) and mapped by `exit-codes.ts`, and a
 * stdout that failed (a reader that went away) turns a success into IO_ERROR (exit 1).
 */
export async function main(argv: readonly string[], io: CommandIO): Promise<number> {
  const end = argv.indexOf('--');
  const json = (end === -1 ? argv : argv.slice(0, end)).includes('--json');
  const out = new Output({ json, stdout: io.stdout, stderr: io.stderr, env: io.env });
  let status: number;
  try {
    status = await dispatch(argv, io, out);
  } catch (err) {
    out.error(err);
    status = exitCodeFor(err);
  }
  // Output a reader never got (EPIPE) is a failure even when the command itself succeeded.
  const undelivered = await out.settle();
  if (undelivered !== undefined && status === ExitCode.OK) {
    out.error(undelivered);
    status = exitCodeFor(undelivered);
  }
  return status;
}
