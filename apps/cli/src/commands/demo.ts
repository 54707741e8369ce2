/**
 * `keyfold demo`: a self-contained tour in a throwaway directory. It runs the real init path (file keyring +
 * config), seals and opens sample records with a data key cache, shows that a flipped byte and a wrong context
 * are refused, prints a summary and removes the directory whatever happens.
 *
 * Demo only: the passphrase is random and never shown, and the keyring uses a deliberately cheap scrypt cost
 * (N=2^14) so the tour runs in well under a second; `keyfold init` uses the provider's production default.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createEnvelope,
  inspectEnvelope,
  isKeyfoldError,
  KeyfoldError,
  resolveSecurityMode,
  type EncryptionContext,
  type EnvelopeStats,
  type KeyfoldErrorCode,
} from '@keyfold/envelope-core';
import type { CommandContext } from '../command.js';
import { DEFAULT_KEYRING_DIR } from '../config.js';
import { installFile } from '../install.js';
import { formatContext, formatCount, formatTable } from '../output.js';

/** Cheap on purpose (16 MiB, a few ms); see the module comment. */
const DEMO_KDF = { name: 'scrypt', N: 2 ** 14, r: 8, p: 1 } as const;

const RECORDS: readonly { context: EncryptionContext; value: Record<string, string | number> }[] = [
  { context: { tenant: 'acme', table: 'users' }, value: { id: 1, name: 'Ada Lovelace', email: 'ada@acme.example' } },
  { context: { tenant: 'acme', table: 'users' }, value: { id: 2, name: 'Alan Turing', email: 'alan@acme.example' } },
  { context: { tenant: 'acme', table: 'payments' }, value: { id: 7, card: '4111 1111 1111 1111', amount: 4200 } },
  { context: { tenant: 'globex', table: 'users' }, value: { id: 1, name: 'Grace Hopper', email: 'grace@globex.example' } },
  { context: { tenant: 'globex', table: 'users' }, value: { id: 2, name: 'Edsger Dijkstra', email: 'ewd@globex.example' } },
];

interface Refusal {
  readonly what: string;
  readonly code: KeyfoldErrorCode;
  readonly message: string;
}

/** Runs `attempt`, which must be refused with `expected`; anything else is a failure of the demo. */
async function expectRefusal(what: string, expected: KeyfoldErrorCode, attempt: () => Promise<unknown>): Promise<Refusal> {
  try {
    await attempt();
  } catch (err) {
    if (isKeyfoldError(err, expected)) return { what, code: err.code, message: err.message };
    throw err;
  }
  throw new KeyfoldError('INTERNAL', `demo: ${what} was not refused; this build of Keyfold is broken`);
}

interface Summary {
  readonly records: number;
  readonly sealed: number;
  readonly opened: number;
  readonly refused: readonly Refusal[];
  readonly plaintextBytes: number;
  readonly envelopeBytes: number;
  readonly overheadBytes: number;
  readonly provider: { readonly kind: string; readonly keyId: string; readonly version: string };
  readonly stats: EnvelopeStats;
}

function renderSummary(ctx: CommandContext, s: Summary): string {
  const st = s.stats;
  const cache = st.cache;
  const rows: string[][] = [
    ['metric', 'value'],
    ['records sealed', String(st.sealed)],
    ['records opened', String(st.opened)],
    ['refused (as expected)', String(s.refused.length)],
    ['plaintext bytes', formatCount(s.plaintextBytes)],
    ['envelope bytes', formatCount(s.envelopeBytes)],
    ['overhead', `${formatCount(s.overheadBytes)} B total, ${formatCount(Math.round(s.overheadBytes / s.records))} B per record`],
    ['provider calls', `${st.providerCalls.total} (wrap ${st.providerCalls.wrap}, unwrap ${st.providerCalls.unwrap}, ` +
      `generateDataKey ${st.providerCalls.generateDataKey})`],
  ];
  if (cache !== undefined) {
    rows.push(['cache (encrypt)', `${cache.encryptHits} hits, ${cache.encryptMisses} misses`]);
    rows.push(['cache (decrypt)', `${cache.decryptHits} hits, ${cache.decryptMisses} misses`]);
  }
  return formatTable(rows, ctx.out.out);
}

export async function run(ctx: CommandContext): Promise<number | undefined> {
  const out = ctx.out;
  const s = out.out;
  const step = (text: string): void => {
    if (!out.json) ctx.stdout.write(`${text}\n`);
  };
  const securityMode = resolveSecurityMode(undefined, ctx.env);
  const root = await mkdtemp(join(tmpdir(), 'keyfold-demo-'));
  try {
    step(s.bold('Keyfold demo') + s.dim(` (throwaway directory ${root}; removed at the end)`));
    const passphrase = randomBytes(24).toString('base64url');
    const installation = await installFile({ dir: join(root, '.keyfold'), passphrase, kdf: DEMO_KDF, securityMode });
    step(
      `1. init      file provider, key id ${installation.provider.keyId}, version ${installation.provider.activeVersion}` +
        s.dim(' (random passphrase, demo-only scrypt N=2^14)'),
    );

    const { createFileProvider } = await import('@keyfold/provider-local');
    const provider = await createFileProvider({
      dir: join(installation.dir, DEFAULT_KEYRING_DIR),
      passphrase,
      securityMode,
    });
    const envelope = createEnvelope({
      providers: [provider],
      cache: { maxAge: 60_000, maxMessages: 1000 },
      policy: { securityMode },
    });
    try {
      const sealed: Uint8Array[] = [];
      let plaintextBytes = 0;
      for (const record of RECORDS) {
        const plaintext = new TextEncoder().encode(JSON.stringify(record.value));
        plaintextBytes += plaintext.length;
        sealed.push(await envelope.seal(plaintext, record.context));
      }
      const envelopeBytes = sealed.reduce((n, e) => n + e.length, 0);
      step(`2. seal      ${RECORDS.length} JSON records, each bound to its context (tenant, table)`);
      step(
        formatTable(
          [
            ['#', 'context', 'plaintext', 'envelope'],
            ...RECORDS.map((r, i) => [
              String(i + 1),
              formatContext(r.context),
              `${JSON.stringify(r.value).length} B`,
              `${(sealed[i] as Uint8Array).length} B`,
            ]),
          ],
          s,
          [2, 3],
        )
          .split('\n')
          .map((l) => `   ${l}`)
          .join('\n'),
      );

      let opened = 0;
      for (const [i, record] of RECORDS.entries()) {
        const plaintext = await envelope.open(sealed[i] as Uint8Array, { context: record.context });
        const same = new TextDecoder().decode(plaintext) === JSON.stringify(record.value);
        plaintext.fill(0);
        if (!same) throw new KeyfoldError('INTERNAL', `demo: record ${i + 1} did not round-trip; this build of Keyfold is broken`);
        opened++;
      }
      step(`3. open      ${opened} records opened with their expected context; every one matches`);

      const info = inspectEnvelope(sealed[2] as Uint8Array);
      step(
        `4. inspect   record 3 header: format v${info.formatVersion}, ${info.suite}, context ${formatContext(info.context)}, ` +
          `wrapped by ${info.wrappedKeys.map((w) => `${w.kind}:${w.keyId} v${w.keyVersion}`).join(', ')} (no key needed)`,
      );

      const tampered = (sealed[2] as Uint8Array).slice();
      const at = tampered.length - 20;
      tampered[at] = (tampered[at] as number) ^ 0x01;
      const refusedTamper = await expectRefusal('a tampered envelope', 'DECRYPT_FAILED', () =>
        envelope.open(tampered, { context: (RECORDS[2] as (typeof RECORDS)[number]).context }),
      );
      step(`5. tamper    flipped one bit of record 3 (byte ${at}): ${s.red('refused')} [${refusedTamper.code}] ${refusedTamper.message}`);

      const wrongContext = { tenant: 'globex', table: 'users' };
      const refusedContext = await expectRefusal('a wrong context', 'CONTEXT_MISMATCH', () =>
        envelope.open(sealed[0] as Uint8Array, { context: wrongContext }),
      );
      step(
        `6. context   record 1 (tenant=acme) opened as ${formatContext(wrongContext)}: ${s.red('refused')} ` +
          `[${refusedContext.code}] ${refusedContext.message}`,
      );

      const summary: Summary = {
        records: RECORDS.length,
        sealed: sealed.length,
        opened,
        refused: [refusedTamper, refusedContext],
        plaintextBytes,
        envelopeBytes,
        overheadBytes: envelopeBytes - plaintextBytes,
        provider: { kind: provider.kind, keyId: provider.keyId, version: installation.provider.activeVersion },
        stats: envelope.stats(),
      };
      step('');
      out.result(summary, () => renderSummary(ctx, summary));
      step('');
      const operations = summary.stats.sealed + summary.stats.opened;
      step(
        s.dim(
          `${summary.stats.providerCalls.total} provider calls for ${operations} seal/open operations: the cache reuses a data ` +
            'key per context when sealing and remembers unwrapped keys when opening.',
        ),
      );
    } finally {
      await envelope.close();
      await provider.close();
    }
    return undefined;
  } finally {
    await rm(root, { recursive: true, force: true });
    step(s.dim(`cleaned up ${root}`));
  }
}
