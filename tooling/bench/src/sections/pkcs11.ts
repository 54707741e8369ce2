/**
 * PKCS#11 section: data key wrap + unwrap pairs per second through `@keyfold/provider-pkcs11`, next to a raw
 * graphene-pk11 loop on one session doing the same token work (C_EncryptInit + C_Encrypt, C_DecryptInit + C_Decrypt
 * with AES-GCM, a fresh 12-byte IV and the same AAD length), all against one SoftHSM2 token, interleaved in this one
 * process. Target (issue 6): the provider reaches >= 80% of the raw single-session figure.
 *
 * The section makes its own SoftHSM2 token in a temp directory (SOFTHSM2_CONF points at it while the section runs)
 * with softhsm2-util; without SoftHSM2 installed it reports NOT MEASURED instead of failing the whole run.
 *
 * Wire it into run.ts as: `pkcs11: () => runPkcs11Section(quick ? { warmupMs: 100, sliceMs: 100, rounds: 3 } :
 * { warmupMs: 500, sliceMs: 400, rounds: 7 })`, with `'pkcs11'` added to `SectionId` / `SECTION_IDS`.
 * @module
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeContext } from '@keyfold/envelope-core';
import { createPkcs11Provider, generatePkcs11KekVersion, type Pkcs11Provider } from '@keyfold/provider-pkcs11';
import { AesGcmParams, Mechanism, Module, ObjectClass, SessionFlag, UserType, type SecretKey, type Session } from 'graphene-pk11';
import { interleave, ratio, type Case, type RateResult } from '../measure.js';
import { evaluateTarget, fmtRate, fmtRatio, type SectionResult, type Table, type TargetSpec } from '../report.js';

export const SOFTHSM_LIBRARY = '/usr/lib/softhsm/libsofthsm2.so';

export interface Pkcs11SectionOptions {
  readonly warmupMs: number;
  readonly sliceMs: number;
  readonly rounds: number;
  /** Pairs in flight for the concurrent provider case. Default 16. */
  readonly inFlight?: number;
  /** PKCS#11 library. Default SoftHSM2's. */
  readonly library?: string;
}

/** The section's result; its id joins `SectionId` when run.ts wires it in. */
export type Pkcs11SectionResult = Omit<SectionResult, 'id'> & { readonly id: 'pkcs11' };

const TARGET: TargetSpec = {
  id: 'pkcs11-provider-vs-raw',
  description: 'PKCS#11 provider wrap+unwrap pairs/s >= 80% of a raw graphene single-session loop (AES_GCM, SoftHSM2)',
  comparator: '>=',
  threshold: 0.8,
  unit: 'x',
};

interface CaseDef {
  readonly id: string;
  readonly label: string;
  /** Pairs per op (concurrent cases run several per op). */
  readonly pairsPerOp: number;
}

const CASES: readonly CaseDef[] = [
  { id: 'raw-sync', label: 'raw graphene, 1 session, sync calls (AES_GCM)', pairsPerOp: 1 },
  { id: 'raw-async', label: 'raw graphene, 1 session, async calls (AES_GCM)', pairsPerOp: 1 },
  { id: 'provider-sync', label: "provider AES_GCM, execution 'sync', one call at a time", pairsPerOp: 1 },
  { id: 'provider-async', label: "provider AES_GCM, execution 'async', one call at a time", pairsPerOp: 1 },
  { id: 'provider-async-concurrent', label: "provider AES_GCM, execution 'async', 4 sessions, N pairs in flight", pairsPerOp: 0 },
  { id: 'provider-kwp-sync', label: "provider AES_KEY_WRAP_PAD, execution 'sync', one call at a time", pairsPerOp: 1 },
];

function notMeasured(reason: string): Pkcs11SectionResult {
  return {
    id: 'pkcs11',
    title: 'PKCS#11 provider (SoftHSM2)',
    notes: [`NOT MEASURED: ${reason}`],
    tables: [],
    targets: [evaluateTarget(TARGET, null, reason)],
    data: { error: reason },
  };
}

function callback<T>(start: (done: (err: Error | null, value: T | null) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    start((err, value) => (err ? reject(err) : value === null ? reject(new Error('no result')) : resolve(value)));
  });
}

/**
 * Runs the PKCS#11 section once. Never throws for a missing SoftHSM2: the result says NOT MEASURED.
 * @example
 * ```ts
 * const section = await runPkcs11Section({ warmupMs: 300, sliceMs: 300, rounds: 5 });
 * ```
 */
export async function runPkcs11Section(opts: Pkcs11SectionOptions): Promise<Pkcs11SectionResult> {
  const library = opts.library ?? SOFTHSM_LIBRARY;
  const inFlight = opts.inFlight ?? 16;
  if (!existsSync(library)) return notMeasured(`${library} is not installed (apt-get install softhsm2)`);

  const dir = mkdtempSync(join(tmpdir(), 'keyfold-bench-softhsm-'));
  const previousConf = process.env.SOFTHSM2_CONF;
  const providers: Pkcs11Provider[] = [];
  let raw: Module | undefined;
  try {
    mkdirSync(join(dir, 'tokens'), { mode: 0o700 });
    const conf = join(dir, 'softhsm2.conf');
    writeFileSync(conf, `directories.tokendir = ${join(dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\n`, { mode: 0o600 });
    process.env.SOFTHSM2_CONF = conf;
    const tokenLabel = 'keyfold-bench';
    const pin = randomBytes(8).toString('hex');
    try {
      execFileSync('softhsm2-util', ['--init-token', '--free', '--label', tokenLabel, '--so-pin', randomBytes(8).toString('hex'), '--pin', pin], {
        stdio: 'ignore',
      });
    } catch (err) {
      return notMeasured(`softhsm2-util could not create a token: ${(err as Error).message}`);
    }
    const keyLabel = 'bench-kek';
    const token = { library, tokenLabel, pin, keyLabel } as const;
    await generatePkcs11KekVersion(token);

    // Raw graphene on its own session, logged in once (login is per application, so the providers share it).
    raw = Module.load(library);
    raw.initialize({ flags: 2 });
    const slots = raw.getSlots(true);
    let session: Session | undefined;
    for (let i = 0; i < slots.length; i++) {
      const slot = slots.items(i);
      if (slot.getToken().label === tokenLabel) session = slot.open(SessionFlag.SERIAL_SESSION);
    }
    if (!session) return notMeasured('the bench token did not appear in the slot list');
    const rawSession = session;
    rawSession.login(pin, UserType.USER);
    const kek = rawSession.find({ class: ObjectClass.SECRET_KEY, label: `${keyLabel}.v1` }).items(0).toType<SecretKey>();

    const make = async (o: Partial<Parameters<typeof createPkcs11Provider>[0]>): Promise<Pkcs11Provider> => {
      const p = await createPkcs11Provider({ ...token, ...o });
      providers.push(p);
      return p;
    };
    const pSync = await make({ mechanism: 'AES_GCM', execution: 'sync', sessions: 1 });
    const pAsync = await make({ mechanism: 'AES_GCM', execution: 'async', sessions: 4 });
    const pKwp = await make({ mechanism: 'AES_KEY_WRAP_PAD', execution: 'sync', sessions: 1 });

    const dataKey = new Uint8Array(randomBytes(32));
    const context = { tenant: 'acme', table: 'orders' };
    // The raw loop authenticates AAD of the same length as the provider's for this context.
    const probe = await pSync.wrapKey(dataKey, context);
    // Length-prefixed label 'keyfold/pkcs11/aes-gcm/v1', kind, key id, version '1' and canonical context.
    const aadLength = 5 * 4 + 'keyfold/pkcs11/aes-gcm/v1'.length + 'pkcs11'.length + keyLabel.length + 1 + encodeContext(context).length;
    const aad = randomBytes(aadLength);
    const rawIn = Buffer.alloc(32);
    rawIn.set(dataKey);
    const encOut = Buffer.alloc(64);
    const decOut = Buffer.alloc(64);
    const lib = rawSession.lib;
    const mech = (): ReturnType<typeof Mechanism.create> =>
      Mechanism.create({ name: 'AES_GCM', params: new AesGcmParams(randomBytes(12), aad, 128) });

    const rawSync = (): void => {
      const m = mech();
      lib.C_EncryptInit(rawSession.handle, m, kek.handle);
      const ct = lib.C_Encrypt(rawSession.handle, rawIn, encOut);
      lib.C_DecryptInit(rawSession.handle, m, kek.handle);
      lib.C_Decrypt(rawSession.handle, ct, decOut);
    };
    const rawAsync = async (): Promise<void> => {
      const m = mech();
      lib.C_EncryptInit(rawSession.handle, m, kek.handle);
      const ct = await callback<Buffer>((done) => lib.C_Encrypt(rawSession.handle, rawIn, encOut, done));
      lib.C_DecryptInit(rawSession.handle, m, kek.handle);
      await callback<Buffer>((done) => lib.C_Decrypt(rawSession.handle, ct, decOut, done));
    };
    const pair = async (p: Pkcs11Provider): Promise<void> => {
      const w = await p.wrapKey(dataKey, context);
      (await p.unwrapKey(w, context)).fill(0);
    };
    const ops: Record<string, () => unknown> = {
      'raw-sync': rawSync,
      'raw-async': rawAsync,
      'provider-sync': () => pair(pSync),
      'provider-async': () => pair(pAsync),
      'provider-async-concurrent': () => Promise.all(Array.from({ length: inFlight }, () => pair(pAsync))),
      'provider-kwp-sync': () => pair(pKwp),
    };
    // Two interleaved runs: first the target pair alone (raw sync vs provider sync, nothing else allocating or
    // creating session objects in between), then every case for the table, with raw sync again as the reference.
    const targetRun = await interleave(
      [
        { id: 'raw-sync', op: ops['raw-sync'] as () => unknown },
        { id: 'provider-sync', op: ops['provider-sync'] as () => unknown },
      ],
      { warmupMs: opts.warmupMs, sliceMs: opts.sliceMs, rounds: opts.rounds },
    );
    const cases: Case[] = CASES.map((c) => ({ id: c.id, op: ops[c.id] as () => unknown }));
    const results = await interleave(cases, { warmupMs: opts.warmupMs, sliceMs: opts.sliceMs, rounds: opts.rounds });
    const pairsPerSec = (c: CaseDef): number => {
      const r = results.get(c.id) as RateResult;
      return r.opsPerSec * (c.pairsPerOp === 0 ? inFlight : c.pairsPerOp);
    };
    const rates = new Map(CASES.map((c) => [c.id, pairsPerSec(c)]));
    const rawSingle = rates.get('raw-sync') ?? null;
    const table: Table = {
      title: `PKCS#11 wrap + unwrap pairs/s (32-byte data key, ${JSON.stringify(context)} context, SoftHSM2 ${probe.ciphertext.length}-byte wrapped keys)`,
      columns: ['case', 'pairs/s', 'vs raw sync 1 session', 'spread'],
      rows: CASES.map((c) => [
        c.pairsPerOp === 0 ? c.label.replace('N pairs', `${inFlight} pairs`) : c.label,
        fmtRate(rates.get(c.id) as number),
        fmtRatio(ratio(rates.get(c.id), rawSingle)),
        `${Math.round((results.get(c.id) as RateResult).spread * 100)}%`,
      ]),
    };
    // The provider's configuration for a token in this machine is execution 'sync' (one call at a time, like the raw
    // loop); 'async' keeps the event loop free for network HSMs and is reported beside it.
    const targetRaw = (targetRun.get('raw-sync') as RateResult).opsPerSec;
    const targetProvider = (targetRun.get('provider-sync') as RateResult).opsPerSec;
    const target = evaluateTarget(
      TARGET,
      ratio(targetProvider, targetRaw),
      `provider sync ${fmtRate(targetProvider)} / raw sync ${fmtRate(targetRaw)}, interleaved as a pair; in the full table: ` +
        `async one at a time ${fmtRatio(ratio(rates.get('provider-async'), rawSingle))}, async ${inFlight} in flight ` +
        `${fmtRatio(ratio(rates.get('provider-async-concurrent'), rawSingle))}`,
    );
    return {
      id: 'pkcs11',
      title: 'PKCS#11 provider (SoftHSM2)',
      notes: [
        `interleaved: warm-up ${opts.warmupMs} ms, ${opts.rounds} rounds of ${opts.sliceMs} ms per case; the target pair is measured first on its own`,
        'raw = graphene-pk11 calls on one session, no provider, same token and KEK, same AAD length',
        "provider pairs include context encoding, AAD, session pool, error mapping and the core's argument checks",
      ],
      tables: [table],
      targets: [target],
      data: {
        inFlight,
        target: { rawSync: targetRaw, providerSync: targetProvider, rounds: Object.fromEntries(targetRun) },
        pairsPerSec: Object.fromEntries(rates),
        rounds: Object.fromEntries(results),
      },
    };
  } catch (err) {
    return notMeasured(err instanceof Error ? err.message : String(err));
  } finally {
    await Promise.allSettled(providers.map((p) => p.close()));
    if (raw) {
      try {
        raw.finalize();
      } catch {
        // the providers' close finalised the library already
      }
    }
    if (previousConf === undefined) delete process.env.SOFTHSM2_CONF;
    else process.env.SOFTHSM2_CONF = previousConf;
    rmSync(dir, { recursive: true, force: true });
  }
}
