/**
 * Section: wrap + unwrap throughput of the Cloud KMS and Key Vault providers on loopback, through the real vendor
 * SDKs against the emulators of tooling/emulators (Cloud KMS over gRPC and over REST; Key Vault over HTTPS with
 * RSA-OAEP-256 and with A256KW on a Managed HSM key). Each pair is one wrapKey and one unwrapKey of a 32-byte data
 * key, so two service round trips; the emulator's own crypto runs in the same process and on the same cores.
 * Measured one pair at a time (latency-bound) and with 16 pairs in flight (throughput).
 * @module
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import * as gax from 'google-gax';
import type { KeyProvider } from '@keyfold/envelope-core';
import { createAzureKeyVaultProvider } from '@keyfold/provider-azure';
import { createGcpKmsProvider } from '@keyfold/provider-gcp';
import { createSelfSignedCertificate, startAzureKeyVaultEmulator } from '../../../emulators/src/azure-kv/index.js';
import { startGcpKmsEmulator } from '../../../emulators/src/gcp-kms/index.js';
import { median, runFor } from '../measure.js';
import { fmtMs, fmtNum, fmtRate, type SectionResult, type Table } from '../report.js';

/** The id run.ts can register this section under. */
export const GCP_AZURE_SECTION_ID = 'gcp-azure';

export interface GcpAzureOptions {
  /** Untimed warm-up per case, ms. */
  readonly warmupMs: number;
  /** Timed slice per case and round, ms. */
  readonly sliceMs: number;
  /** Rounds per case (median reported). */
  readonly rounds: number;
  /** Pairs in flight for the concurrent measurement. Default 16. */
  readonly concurrency?: number;
}

/** One measured provider. */
export interface GcpAzureCase {
  readonly id: string;
  readonly label: string;
  /** Sequential wrap+unwrap pairs per second (median of rounds). */
  readonly sequentialPairsPerSec: number;
  /** Pairs per second with `concurrency` in flight (median of rounds). */
  readonly concurrentPairsPerSec: number;
  readonly rounds: { sequential: readonly number[]; concurrent: readonly number[] };
}

/** Like `SectionResult`, with this section's own id (add it to `SectionId` when registering the section). */
export type GcpAzureSectionResult = Omit<SectionResult, 'id'> & { readonly id: typeof GCP_AZURE_SECTION_ID };

const CONTEXT = Object.freeze({ bench: 'gcp-azure', tenant: 'acme' });

async function pair(provider: KeyProvider, key: Uint8Array): Promise<void> {
  const wrapped = await provider.wrapKey(key, CONTEXT);
  const back = await provider.unwrapKey(wrapped, CONTEXT);
  if (back.length !== 32 || back[0] !== key[0] || back[31] !== key[31]) throw new Error('wrap/unwrap did not round-trip');
  back.fill(0);
}

async function concurrentFor(provider: KeyProvider, key: Uint8Array, ms: number, width: number): Promise<number> {
  const start = performance.now();
  const end = start + ms;
  let pairs = 0;
  const worker = async (): Promise<void> => {
    while (performance.now() < end) {
      await pair(provider, key);
      pairs++;
    }
  };
  await Promise.all(Array.from({ length: width }, worker));
  return (pairs * 1000) / (performance.now() - start);
}

async function measure(id: string, label: string, provider: KeyProvider, opts: GcpAzureOptions): Promise<GcpAzureCase> {
  const key = new Uint8Array(randomBytes(32));
  const width = opts.concurrency ?? 16;
  await runFor(() => pair(provider, key), opts.warmupMs, 3);
  const sequential: number[] = [];
  const concurrent: number[] = [];
  for (let r = 0; r < opts.rounds; r++) {
    const s = await runFor(() => pair(provider, key), opts.sliceMs);
    sequential.push((s.iterations * 1000) / s.elapsedMs);
    concurrent.push(await concurrentFor(provider, key, opts.sliceMs, width));
  }
  return {
    id,
    label,
    sequentialPairsPerSec: median(sequential),
    concurrentPairsPerSec: median(concurrent),
    rounds: { sequential, concurrent },
  };
}

/**
 * Measures wrap + unwrap throughput of `@keyfold/provider-gcp` and `@keyfold/provider-azure` against the emulators.
 * Starts and stops the emulators itself; a case that cannot run is reported as NOT MEASURED in the notes.
 * @example
 * ```ts
 * const result = await runGcpAzure({ warmupMs: 200, sliceMs: 1000, rounds: 3 });
 * ```
 */
export async function runGcpAzure(opts: GcpAzureOptions): Promise<GcpAzureSectionResult> {
  const cases: GcpAzureCase[] = [];
  const errors: string[] = [];
  const gcp = await startGcpKmsEmulator();
  const tls = createSelfSignedCertificate();
  const azure = await startAzureKeyVaultEmulator({ tls, managedHsm: true });
  const width = opts.concurrency ?? 16;
  try {
    for (const transport of ['grpc', 'rest'] as const) {
      const keyName = gcp.createKey(`bench-${transport}`);
      const authClient = new gax.googleAuthLibrary.PassThroughClient();
      const clientOptions =
        transport === 'grpc'
          ? { apiEndpoint: gcp.host, port: gcp.grpcPort, sslCreds: gax.grpc.credentials.createInsecure(), authClient }
          : { fallback: 'rest', protocol: 'http', apiEndpoint: gcp.host, port: gcp.restPort, authClient };
      const label = `Cloud KMS over ${transport === 'grpc' ? 'gRPC' : 'REST'} (CRC32C on)`;
      try {
        const provider = await createGcpKmsProvider({ keyName, clientOptions });
        try {
          cases.push(await measure(`gcp-kms-${transport}`, label, provider, opts));
        } finally {
          await provider.close();
        }
      } catch (err) {
        errors.push(`${label}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    for (const [algorithm, kty] of [['RSA-OAEP-256', 'RSA'], ['A256KW', 'oct-HSM']] as const) {
      const name = `bench-${kty.toLowerCase()}`;
      azure.createKey(name, { kty });
      const label = `Key Vault over HTTPS, ${algorithm} (${kty === 'RSA' ? 'RSA 2048' : 'Managed HSM oct-HSM 256'})`;
      try {
        const provider = await createAzureKeyVaultProvider({
          keyId: `${azure.httpsUrl!}/keys/${name}`,
          algorithm,
          credential: { getToken: () => Promise.resolve({ token: 'bench', expiresOnTimestamp: Date.now() + 3_600_000 }) },
          clientOptions: { disableChallengeResourceVerification: true, tlsOptions: { ca: tls.cert } },
        });
        try {
          cases.push(await measure(`azure-kv-${algorithm.toLowerCase()}`, label, provider, opts));
        } finally {
          await provider.close();
        }
      } catch (err) {
        errors.push(`${label}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  } finally {
    await Promise.all([gcp.close(), azure.close()]);
  }
  const table: Table = {
    title: 'Cloud KMS and Key Vault providers: wrap + unwrap pairs on loopback (real SDKs, emulators in process)',
    columns: ['provider', 'pairs/s, 1 in flight', 'per pair', `pairs/s, ${width} in flight`],
    rows: cases.map((c) => [c.label, fmtRate(c.sequentialPairsPerSec), fmtMs(1000 / c.sequentialPairsPerSec), fmtRate(c.concurrentPairsPerSec)]),
  };
  return {
    id: GCP_AZURE_SECTION_ID,
    title: 'Cloud KMS / Key Vault providers',
    notes: [
      `${opts.rounds} rounds of ${fmtNum(opts.sliceMs)} ms per case after ${fmtNum(opts.warmupMs)} ms warm-up; median reported`,
      'one pair = wrapKey + unwrapKey of a 32-byte data key with a 2-entry context: two service calls through the shared resilience',
      'the emulators (real AES-GCM / RSA-OAEP / AES-KW) share the process and the cores with the client: figures are a floor for SDK + provider overhead, not cloud latency',
      ...errors.map((e) => `NOT MEASURED: ${e}`),
    ],
    tables: [table],
    targets: [],
    data: { concurrency: width, cases },
  };
}
