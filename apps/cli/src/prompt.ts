/**
 * Passphrases: from `KEYFOLD_PASSPHRASE`, else a hidden prompt on the terminal. Never from a flag (it would land in
 * shell history and `ps`), never echoed, never printed.
 * @module
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { PASSPHRASE_ENV } from './credential-env.js';
import { CliError, UsageError } from './exit-codes.js';

/** The variable the passphrase is read from (listed with every credential variable in `credential-env.ts`). */
export { PASSPHRASE_ENV };

export interface PromptIO {
  readonly stdin: NodeJS.ReadStream;
  readonly stderr: NodeJS.WriteStream;
}

/**
 * Asks `question` on stderr and reads one line from the terminal without echoing it.
 * @throws CliError INTERRUPTED on Ctrl-C or when input ends before a line.
 */
export function promptHidden(question: string, io: PromptIO): Promise<string> {
  let muted = false;
  // readline echoes what is typed (and redraws the line) through its output; this sink drops all of it once the
  // question is shown, so the passphrase never reaches the screen or a terminal recording.
  const sink = new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      if (!muted) io.stderr.write(chunk);
      callback();
    },
  });
  const rl = createInterface({ input: io.stdin, output: sink, terminal: true, historySize: 0 });
  return new Promise<string>((resolve, reject) => {
    let answered = false;
    rl.on('SIGINT', () => {
      rl.close();
    });
    rl.on('close', () => {
      if (!answered) {
        io.stderr.write('\n');
        reject(new CliError('INTERRUPTED', 'passphrase prompt cancelled'));
      }
    });
    rl.question(question, (answer) => {
      answered = true;
      io.stderr.write('\n');
      rl.close();
      resolve(answer);
    });
    muted = true;
  });
}

function sameSecret(a: string, b: string): boolean {
  // Equal-length digests, compared in constant time: the comparison says nothing about where two entries differ.
  const da = createHash('sha256').update(a, 'utf8').digest();
  const db = createHash('sha256').update(b, 'utf8').digest();
  return timingSafeEqual(da, db);
}

export interface PassphraseOptions extends PromptIO {
  readonly env: NodeJS.ProcessEnv;
  /** Ask twice and require both to match (when creating a KEK file). */
  readonly confirm: boolean;
  /** Command name for the usage hint. */
  readonly command: string;
}

/**
 * The passphrase from `KEYFOLD_PASSPHRASE`, else from a hidden prompt when stdin is a terminal.
 * @throws UsageError when neither is available (no terminal and no variable), when the variable is set but empty,
 *   or when the prompt gets an empty answer or two different answers.
 */
export async function readPassphrase(options: PassphraseOptions): Promise<string> {
  const fromEnv = options.env[PASSPHRASE_ENV];
  if (fromEnv !== undefined) {
    if (fromEnv === '') throw new UsageError(`${PASSPHRASE_ENV} is set but empty`, options.command);
    return fromEnv;
  }
  if (options.stdin.isTTY !== true) {
    throw new UsageError(
      `a passphrase is needed and there is no terminal to ask on: set ${PASSPHRASE_ENV}`,
      options.command,
    );
  }
  const first = await promptHidden('Passphrase: ', options);
  if (first === '') throw new UsageError('the passphrase must not be empty', options.command);
  if (options.confirm) {
    const second = await promptHidden('Repeat passphrase: ', options);
    if (!sameSecret(first, second)) throw new UsageError('the two passphrases differ; nothing was written', options.command);
  }
  return first;
}
