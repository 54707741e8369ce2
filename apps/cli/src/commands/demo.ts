/**
 * `keyfold demo`: the tour of a whole installation, in a throwaway directory: init (file KEK + SQLite key store,
 * through the real init path) -> 3 tenants -> seal N records (default 10,000) under tenant keys -> add a KEK
 * version and rotate with progress -> prove every record still opens -> rotate one tenant key -> shred one tenant
 * (its records refuse to open) -> tamper and wrong-context refusals -> verify the audit log -> a summary table.
 * The directory is removed whatever happens.
 *
 * Demo only: the passphrase is random and never shown, and the KEK file uses a deliberately cheap scrypt cost
 * (N=2^14) so the tour takes a few seconds; `keyfold init` uses the provider's production default.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createEnvelope,
  isKeyfoldError,
  KeyfoldError,
  resolveSecurityMode,
  type EncryptionContext,
  type Envelope,
  type EnvelopeStats,
  type KeyfoldErrorCode,
  type KeyProvider,
} from '@keyfold/envelope-core';
import type { CommandContext } from '../command.js';
import { DEFAULT_KEYRING_DIR } from '../config.js';
import { UsageError } from '../exit-codes.js';
import { installFile, Rollback } from '../install.js';
import { formatContext, formatCount, formatTable } from '../output.js';
import { ProgressBar } from '../progress.js';
import { attachStore } from '../store-init.js';
import { DEFAULT_STORE_FILE } from '../store-config.js';

/** Cheap on purpose (16 MiB, a few ms); see the module comment. */
const DEMO_KDF = { name: 'scrypt', N: 2 ** 14, r: 8, p: 1 } as const;
const TENANTS = ['acme', 'globex', 'initech'] as const;
type Tenant = (typeof TENANTS)[number];
const ROTATED: Tenant = 'globex';
const SHREDDED: Tenant = 'initech';
const NAMES = ['Ada Lovelace', 'Alan Turing', 'Grace Hopper', 'Edsger Dijkstra', 'Barbara Liskov', 'Donald Knuth'];

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

/** Counts the calls that reach the KEK provider (the KEK file). Methods run on the real provider. */
function countingProvider<P extends KeyProvider>(provider: P): { provider: P; calls: { wrap: number; unwrap: number } } {
  const calls = { wrap: 0, unwrap: 0 };
  const proxy = new Proxy(provider, {
    get(target, key) {
      const value: unknown = Reflect.get(target, key, target);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        if (key === 'wrapKey') calls.wrap++;
        if (key === 'unwrapKey') calls.unwrap++;
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { provider: proxy, calls };
}

function recordsOption(ctx: CommandContext): number {
  const raw = ctx.args.string('records');
  if (raw === undefined) return 10_000;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < 30 || n > 1_000_000) throw new UsageError(`--records must be an integer from 30 to 1000000; got ${JSON.stringify(raw)}`, ctx.name);
  return n;
}

interface Row {
  readonly tenant: Tenant;
  readonly id: number;
  readonly text: string;
  readonly sealed: Uint8Array;
}

const contextOf = (tenant: Tenant): EncryptionContext => ({ tenant, table: 'customers' });

export interface DemoSummary {
  readonly records: number;
  readonly tenants: readonly { id: string; records: number; keyVersions: number; shredded: boolean }[];
  readonly sealed: number;
  readonly openedAfterRotation: number;
  readonly kekRotation: {
    readonly from: string;
    readonly to: string;
    readonly rewrapped: number;
    readonly keysPerSecond: number;
    readonly durationMs: number;
    readonly verified: number;
  };
  readonly tenantRotation: { readonly tenant: string; readonly activeVersion: number; readonly oldRecordsOpen: boolean };
  readonly shred: { readonly tenant: string; readonly refused: number; readonly code: string; readonly othersOpen: number };
  readonly refused: readonly Refusal[];
  readonly providerCalls: {
    readonly kek: { readonly wrap: number; readonly unwrap: number };
    readonly tenantKeys: EnvelopeStats['providerCalls'];
  };
  readonly audit: { readonly ok: boolean; readonly entries: number; readonly head: { seq: number; hash: string } };
  readonly plaintextBytes: number;
  readonly envelopeBytes: number;
  readonly timingsMs: Readonly<Record<string, number>>;
}

function ms(n: number): string {
  return n >= 1000 ? `${(n / 1000).toFixed(2)} s` : `${n.toFixed(0)} ms`;
}

function renderSummary(ctx: CommandContext, s: DemoSummary): string {
  const t = s.timingsMs;
  const kc = s.providerCalls.kek;
  const tc = s.providerCalls.tenantKeys;
  const rows: string[][] = [
    ['metric', 'value'],
    ['records', `${formatCount(s.records)} sealed under ${s.tenants.length} tenant keys (${formatCount(s.envelopeBytes)} B of envelopes)`],
    ['opened after KEK rotation', `${formatCount(s.openedAfterRotation)} of ${formatCount(s.records)}`],
    [
      'KEK rotation',
      `${s.kekRotation.from} -> ${s.kekRotation.to}: ${s.kekRotation.rewrapped} keys re-wrapped in ${ms(s.kekRotation.durationMs)} ` +
        `(${formatCount(Math.round(s.kekRotation.keysPerSecond))} keys/s), 0 records re-encrypted`,
    ],
    ['tenant key rotation', `${s.tenantRotation.tenant} now on version ${s.tenantRotation.activeVersion}; older records still open`],
    ['shredded tenant', `${s.shred.tenant}: ${formatCount(s.shred.refused)} records refused [${s.shred.code}]; ${formatCount(s.shred.othersOpen)} others open`],
    ['refused (as expected)', s.refused.map((r) => r.code).join(', ')],
    ['KEK provider calls', `${kc.wrap + kc.unwrap} (wrap ${kc.wrap}, unwrap ${kc.unwrap})`],
    ['tenant key calls', `${tc.total} (wrap ${tc.wrap}, unwrap ${tc.unwrap}) for ${formatCount(s.records * 3)} seal/open operations`],
    ['audit log', `${s.audit.entries} entries, chain ${s.audit.ok ? 'verified' : 'BROKEN'} (head #${s.audit.head.seq} ${s.audit.head.hash.slice(0, 12)}…)`],
    [
      'timings',
      `init ${ms(t.init ?? 0)}, seal ${ms(t.seal ?? 0)}, rotate ${ms(t.rotate ?? 0)}, verify ${ms(t.verify ?? 0)}, ` +
        `shred ${ms(t.shred ?? 0)}, total ${ms(t.total ?? 0)}`,
    ],
  ];
  return formatTable(rows, ctx.out.out);
}

async function openAll(envelopes: Readonly<Record<Tenant, Envelope>>, rows: readonly Row[], skip?: Tenant): Promise<number> {
  let opened = 0;
  for (const r of rows) {
    if (r.tenant === skip) continue;
    const plaintext = await envelopes[r.tenant].open(r.sealed, { context: contextOf(r.tenant) });
    const same = new TextDecoder().decode(plaintext) === r.text;
    plaintext.fill(0);
    if (!same) throw new KeyfoldError('INTERNAL', `demo: record ${r.id} did not round-trip; this build of Keyfold is broken`);
    opened++;
  }
  return opened;
}

export async function run(ctx: CommandContext): Promise<number | undefined> {
  const count = recordsOption(ctx);
  const out = ctx.out;
  const s = out.out;
  const step = (text: string): void => {
    if (!out.json) ctx.stdout.write(`${text}\n`);
  };
  const securityMode = resolveSecurityMode(undefined, ctx.env);
  const timings: Record<string, number> = {};
  const started = performance.now();
  let mark = started;
  const lap = (name: string): void => {
    const now = performance.now();
    timings[name] = now - mark;
    mark = now;
  };
  const root = await mkdtemp(join(tmpdir(), 'keyfold-demo-'));
  try {
    step(s.bold('Keyfold demo') + s.dim(` (throwaway directory ${root}; removed at the end)`));
    const passphrase = randomBytes(24).toString('base64url');
    const installation = await installFile({ dir: join(root, '.keyfold'), passphrase, kdf: DEMO_KDF, securityMode });
    const [{ createFileProvider }, keystore, rotation] = await Promise.all([
      import('@keyfold/provider-local'),
      import('@keyfold/keystore'),
      import('@keyfold/rotation'),
    ]);
    const file = await createFileProvider({ dir: join(installation.dir, DEFAULT_KEYRING_DIR), passphrase, securityMode });
    // Nothing to roll back on failure: the whole throwaway directory is removed at the end. The store is locked by the
    // file provider, which creates its audit key, as `keyfold init` does.
    const storeInfo = await attachStore(ctx, installation, { backend: 'sqlite', path: DEFAULT_STORE_FILE }, securityMode, new Rollback(), file);
    const { provider, calls: kekCalls } = countingProvider(file);
    const store = await keystore.openSqliteKeyStore({ path: join(installation.dir, DEFAULT_STORE_FILE), create: false, securityMode });
    let tenantKeys = await keystore.openTenantKeys({ store, provider, actor: 'demo', securityMode });
    const envelopes: Envelope[] = [];
    const envelopeSet = (cache: boolean): Record<Tenant, Envelope> => {
      const set = Object.fromEntries(
        TENANTS.map((t) => [
          t,
          createEnvelope({
            providers: [tenantKeys.tenant(t)],
            policy: { securityMode },
            ...(cache ? { cache: { maxAge: 60_000, maxMessages: 1_000_000 } } : {}),
          }),
        ]),
      ) as Record<Tenant, Envelope>;
      envelopes.push(...Object.values(set));
      return set;
    };
    try {
      step(
        `1. init      file KEK ${installation.provider.keyId} v${installation.provider.activeVersion} + SQLite key store ` +
          `(schema ${storeInfo.schemaVersion}, install lock recorded)` +
          s.dim(' (random passphrase, demo-only scrypt N=2^14)'),
      );
      for (const t of TENANTS) await tenantKeys.createTenant(t);
      step(`2. tenants   ${TENANTS.join(', ')}: one data key each, wrapped under the KEK, kept in the store`);
      lap('init');

      // Seal: the data key cache reuses one data key per tenant context, so sealing hardly calls the tenant keys.
      const sealing = envelopeSet(true);
      const rows: Row[] = [];
      let plaintextBytes = 0;
      for (let i = 0; i < count; i++) {
        const tenant = TENANTS[i % TENANTS.length] as Tenant;
        const text = JSON.stringify({ id: i + 1, tenant, name: NAMES[i % NAMES.length], balance: (i * 7919) % 100_000 });
        plaintextBytes += text.length;
        rows.push({ tenant, id: i + 1, text, sealed: await sealing[tenant].seal(text, contextOf(tenant)) });
      }
      const envelopeBytes = rows.reduce((n, r) => n + r.sealed.length, 0);
      lap('seal');
      step(`3. seal      ${formatCount(count)} records, each bound to its context (tenant, table) ` + s.dim(`in ${ms(timings.seal ?? 0)}`));

      // KEK rotation: a new file KEK version, then every stored key re-wrapped under it (the records are untouched).
      const fromVersion = installation.provider.activeVersion;
      const toVersion = await file.rotate();
      const bar = new ProgressBar(ctx, '   rotating');
      const report = await rotation.rotateKek({ store, to: provider, concurrency: 1, actor: 'demo', onProgress: (p) => bar.update(p) });
      bar.finish();
      if (report.failed.length > 0 || report.rewrapped !== TENANTS.length) {
        throw new KeyfoldError('INTERNAL', `demo: the KEK rotation re-wrapped ${report.rewrapped} keys with ${report.failed.length} failures`);
      }
      const verified = await rotation.verifyKek({ store, providers: [provider], concurrency: 1, actor: 'demo' });
      if (verified.failed.length > 0) throw new KeyfoldError('INTERNAL', 'demo: a key failed to verify after rotation');
      lap('rotate');
      const kekRotation = {
        from: `${file.kind} v${fromVersion}`,
        to: `v${toVersion}`,
        rewrapped: report.rewrapped,
        keysPerSecond: report.durationMs > 0 ? (report.rewrapped * 1000) / report.durationMs : 0,
        durationMs: report.durationMs,
        verified: verified.ok,
      };
      step(
        `4. rotate    KEK v${fromVersion} -> v${toVersion}: ${report.rewrapped} tenant keys re-wrapped and verified in ` +
          `${ms(report.durationMs)}; ${formatCount(count)} records untouched (envelope encryption re-wraps keys, not data)`,
      );

      // Fresh tenant keys (empty caches): every tenant key is unwrapped again, now under the new KEK version.
      await tenantKeys.close();
      tenantKeys = await keystore.openTenantKeys({ store, provider, actor: 'demo', securityMode });
      const opening = envelopeSet(false);
      const openedAfterRotation = await openAll(opening, rows);
      lap('verify');
      step(`5. verify    ${formatCount(openedAfterRotation)} of ${formatCount(count)} records open under the rotated KEK ` + s.dim(`in ${ms(timings.verify ?? 0)}`));

      const rotated = await tenantKeys.rotateTenantKey(ROTATED);
      const fresh = await opening[ROTATED].seal('after the tenant key rotation', contextOf(ROTATED));
      const freshVersion = opening[ROTATED].inspect(fresh).wrappedKeys[0]?.keyVersion;
      const oldRow = rows.find((r) => r.tenant === ROTATED) as Row;
      const oldOpen = new TextDecoder().decode(await opening[ROTATED].open(oldRow.sealed, { context: contextOf(ROTATED) })) === oldRow.text;
      step(`6. tenant    ${ROTATED} key rotated to version ${rotated.activeVersion ?? '?'}: new records use v${freshVersion ?? '?'}, old ones still open`);

      await tenantKeys.shredTenant(SHREDDED);
      let refusedShred = 0;
      let shredCode = '';
      for (const r of rows) {
        if (r.tenant !== SHREDDED) continue;
        const refusal = await expectRefusal(`a record of shredded ${SHREDDED}`, 'KEY_NOT_FOUND', () =>
          opening[SHREDDED].open(r.sealed, { context: contextOf(SHREDDED) }),
        );
        shredCode = refusal.code;
        refusedShred++;
      }
      const othersOpen = await openAll(opening, rows, SHREDDED);
      lap('shred');
      step(
        `7. shred     ${SHREDDED}: every key version destroyed; ${formatCount(refusedShred)} of its records ${s.red('refused')} ` +
          `[${shredCode}]; the ${formatCount(othersOpen)} records of the other tenants still open`,
      );

      const acme = rows[0] as Row;
      const tampered = acme.sealed.slice();
      const at = tampered.length - 20;
      tampered[at] = (tampered[at] as number) ^ 0x01;
      const refusedTamper = await expectRefusal('a tampered envelope', 'DECRYPT_FAILED', () =>
        opening.acme.open(tampered, { context: contextOf('acme') }),
      );
      step(`8. tamper    flipped one bit of record ${acme.id}: ${s.red('refused')} [${refusedTamper.code}] ${refusedTamper.message}`);
      const wrongContext = { tenant: 'globex', table: 'customers' };
      const refusedContext = await expectRefusal('a wrong context', 'CONTEXT_MISMATCH', () =>
        opening.acme.open(acme.sealed, { context: wrongContext }),
      );
      step(
        `9. context   record ${acme.id} (${formatContext(contextOf('acme'))}) opened as ${formatContext(wrongContext)}: ` +
          `${s.red('refused')} [${refusedContext.code}] ${refusedContext.message}`,
      );

      const audit = await store.verifyAudit();
      if (!audit.ok) throw new KeyfoldError('INTEGRITY_FAILED', `demo: the audit log does not verify: ${audit.problem?.message ?? ''}`);
      const events = new Map<string, number>();
      for (const e of await store.listAudit({ limit: 100_000 })) events.set(e.event, (events.get(e.event) ?? 0) + 1);
      step(
        `10. audit    ${audit.entries} entries, hash chain verified (${[...events.entries()].map(([e, n]) => (n > 1 ? `${e} x${n}` : e)).join(', ')})`,
      );
      timings.total = performance.now() - started;

      const tenants = await tenantKeys.listTenants();
      const stats = sumStats(envelopes.map((e) => e.stats()));
      const summary: DemoSummary = {
        records: count,
        tenants: tenants.map((t) => ({ id: t.id, records: rows.filter((r) => r.tenant === t.id).length, keyVersions: t.versions, shredded: t.shredded })),
        sealed: rows.length,
        openedAfterRotation,
        kekRotation,
        tenantRotation: { tenant: ROTATED, activeVersion: rotated.activeVersion ?? 0, oldRecordsOpen: oldOpen },
        shred: { tenant: SHREDDED, refused: refusedShred, code: shredCode, othersOpen },
        refused: [refusedTamper, refusedContext],
        providerCalls: { kek: { ...kekCalls }, tenantKeys: stats },
        audit: { ok: audit.ok, entries: audit.entries, head: audit.head },
        plaintextBytes,
        envelopeBytes,
        timingsMs: timings,
      };
      step('');
      out.result(summary, () => renderSummary(ctx, summary));
    } finally {
      await Promise.all(envelopes.map((e) => e.close()));
      await tenantKeys.close();
      await store.close();
      await file.close();
    }
    return undefined;
  } finally {
    await rm(root, { recursive: true, force: true });
    step(s.dim(`cleaned up ${root}`));
  }
}

function sumStats(all: readonly EnvelopeStats[]): EnvelopeStats['providerCalls'] {
  const sum = { total: 0, wrap: 0, unwrap: 0, generateDataKey: 0 };
  for (const st of all) {
    sum.total += st.providerCalls.total;
    sum.wrap += st.providerCalls.wrap;
    sum.unwrap += st.providerCalls.unwrap;
    sum.generateDataKey += st.providerCalls.generateDataKey;
  }
  return sum;
}
