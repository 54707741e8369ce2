/**
 * `keyfold init`: a new installation in the configuration directory. Default: the file provider (a random KEK
 * sealed under a passphrase in DIR/keys); `--provider env`: KEKs in versioned environment variables.
 * @module
 */
import { resolveSecurityMode } from '@keyfold/envelope-core';
import type { KdfOptions } from '@keyfold/provider-local';
import type { CommandContext } from '../command.js';
import { UsageError } from '../exit-codes.js';
import { assertNotInitialised, installEnv, installFile, type Installation } from '../install.js';
import { formatCount, formatFields } from '../output.js';
import { readPassphrase } from '../prompt.js';

function kdfOption(ctx: CommandContext): KdfOptions | undefined {
  const kdf = ctx.args.string('kdf');
  if (kdf === undefined) return undefined;
  if (kdf === 'pbkdf2') return { name: 'pbkdf2-sha256' };
  if (kdf === 'scrypt') return { name: 'scrypt' };
  throw new UsageError(`--kdf must be "scrypt" or "pbkdf2"; got ${JSON.stringify(kdf)}`, ctx.name);
}

function describeKdf(kdf: NonNullable<Installation['provider']['kdf']>): string {
  return kdf.name === 'pbkdf2-sha256'
    ? `pbkdf2-sha256, ${formatCount(kdf.iterations)} iterations`
    : `scrypt, N=${formatCount(kdf.N)} r=${kdf.r} p=${kdf.p}`;
}

function render(ctx: CommandContext, inst: Installation): string {
  const p = inst.provider;
  const rows: [string, string][] = [
    ['config', `${inst.configPath} (mode 0600)`],
    ['provider', p.kind],
    ['key id', p.keyId],
    ['active version', p.activeVersion],
  ];
  if (p.keyring !== undefined) rows.push(['keyring', `${p.keyring} (mode 0600)`]);
  if (p.kdf !== undefined) rows.push(['kdf', describeKdf(p.kdf)]);
  if (p.prefix !== undefined) rows.push(['variables', `${p.prefix}1, ${p.prefix}2, ...`]);
  rows.push(['security mode', inst.securityMode]);
  const lines = [`Initialised Keyfold in ${inst.dir}`, '', formatFields(rows, ctx.out.out), ''];
  if (p.kind === 'file') {
    lines.push('Keep the passphrase safe: without it nothing sealed with this keyring can be opened.');
  } else {
    lines.push(`Every keyfold run needs the ${p.prefix ?? ''}<N> variables; keep them out of shell history and logs.`);
  }
  lines.push('Next: keyfold encrypt --in FILE --out FILE.kf   (keyfold status shows this installation)');
  return lines.join('\n');
}

export async function run(ctx: CommandContext): Promise<number | undefined> {
  const providerKind = ctx.args.string('provider') ?? 'file';
  if (providerKind !== 'file' && providerKind !== 'env') {
    throw new UsageError(`--provider must be "file" or "env"; got ${JSON.stringify(providerKind)}`, ctx.name);
  }
  const kdf = kdfOption(ctx);
  const prefix = ctx.args.string('prefix');
  if (providerKind === 'env' && kdf !== undefined) throw new UsageError('--kdf applies to the file provider only', ctx.name);
  if (providerKind === 'file' && prefix !== undefined) throw new UsageError('--prefix applies to the env provider only', ctx.name);
  const securityMode = resolveSecurityMode(undefined, ctx.env);

  let installation: Installation;
  if (providerKind === 'file') {
    // Refuse an existing installation before asking for a passphrase.
    await assertNotInitialised(ctx.dir);
    const passphrase = await readPassphrase({
      env: ctx.env,
      stdin: ctx.stdin,
      stderr: ctx.stderr,
      confirm: true,
      command: ctx.name,
    });
    installation = await installFile({ dir: ctx.dir, passphrase, securityMode, ...(kdf === undefined ? {} : { kdf }) });
  } else {
    try {
      installation = await installEnv({ dir: ctx.dir, prefix, env: ctx.env, securityMode });
    } catch (err) {
      // A malformed --prefix is a caller mistake in the core's terms: a usage error here.
      if (err instanceof TypeError || err instanceof RangeError) throw new UsageError(err.message, ctx.name);
      throw err;
    }
  }
  ctx.out.result({ ok: true, ...installation }, () => render(ctx, installation));
  return undefined;
}
