/**
 * Section 3: envelope overhead in bytes for a 64 B plaintext, one KEK, no encryption context.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { createEsdkOneShot, ESDK_KEY_NAME, ESDK_KEY_NAMESPACE } from '../contenders/esdk.js';
import { createKeyfoldEnvelope } from '../contenders/keyfold.js';
import { createRawOneShot } from '../contenders/raw.js';
import { ratio } from '../measure.js';
import { evaluateTarget, fmtRatio, type SectionResult, type Table } from '../report.js';

export const OVERHEAD_PLAINTEXT = 64;

export interface OverheadRow {
  readonly id: string;
  readonly label: string;
  readonly total: number | null;
  readonly overhead: number | null;
  readonly detail?: string;
  readonly error?: string;
}

export interface OverheadData {
  readonly plaintextBytes: number;
  readonly rows: readonly OverheadRow[];
}

async function measure(
  id: string,
  label: string,
  fn: () => Promise<{ total: number; detail?: string }>,
): Promise<OverheadRow> {
  try {
    const { total, detail } = await fn();
    return { id, label, total, overhead: total - OVERHEAD_PLAINTEXT, ...(detail ? { detail } : {}) };
  } catch (err) {
    return { id, label, total: null, overhead: null, error: err instanceof Error ? err.message : String(err) };
  }
}

export async function runOverhead(): Promise<SectionResult> {
  const pt = new Uint8Array(randomBytes(OVERHEAD_PLAINTEXT));
  const rows: OverheadRow[] = [];

  rows.push(
    await measure('keyfold', 'Keyfold binary envelope (env KEK)', async () => {
      const { envelope, provider } = await createKeyfoldEnvelope({ cache: false });
      try {
        const sealed = await envelope.seal(pt);
        const info = envelope.inspect(sealed);
        const w = info.wrappedKeys[0];
        const detail =
          `header ${info.headerLength} B` +
          (w ? ` (wrapped key ${w.ciphertextLength} B, keyId "${w.keyId}", version "${w.keyVersion}")` : '') +
          `, body ${info.bodyLength} B`;
        return { total: sealed.length, detail };
      } finally {
        await envelope.close();
        await provider.close();
      }
    }),
  );
  rows.push(
    await measure('keyfold-armor', 'Keyfold text armor kf1.<base64url> (info)', async () => {
      const { envelope, provider } = await createKeyfoldEnvelope({ cache: false });
      try {
        return { total: (await envelope.sealToString(pt)).length };
      } finally {
        await envelope.close();
        await provider.close();
      }
    }),
  );
  for (const suite of [0x0478, 0x0578] as const) {
    const s = `0x${suite.toString(16).padStart(4, '0')}`;
    rows.push(
      await measure(`esdk-${s}`, `ESDK ${s}, raw AES keyring`, async () => {
        const e = await createEsdkOneShot({ suite, cache: false });
        return {
          total: (await e.seal(pt)).length,
          detail: `keyNamespace "${ESDK_KEY_NAMESPACE}", keyName "${ESDK_KEY_NAME}"`,
        };
      }),
    );
  }
  rows.push(
    await measure('raw', 'node:crypto AES-256-GCM iv || ct || tag (floor)', async () => {
      const r = await createRawOneShot();
      return { total: (await r.seal(pt)).length };
    }),
  );

  const kf = rows.find((r) => r.id === 'keyfold');
  const esdk = rows.find((r) => r.id === 'esdk-0x0478');
  const table: Table = {
    title: `Overhead for a ${OVERHEAD_PLAINTEXT} B plaintext, no encryption context (lower is better)`,
    columns: ['format', 'total', 'overhead', 'detail'],
    rows: rows.map((r) => [
      r.label,
      r.total === null ? 'n/a' : `${r.total} B`,
      r.overhead === null ? 'n/a' : `${r.overhead} B`,
      r.error ? `ERROR: ${r.error}` : (r.detail ?? ''),
    ]),
  };
  const cmp = ratio(kf?.overhead, esdk?.overhead);
  return {
    id: 'overhead',
    title: '3. Envelope overhead',
    notes: [
      'overhead = sealed length - plaintext length; one KEK, no context; the ESDK message includes its key provider ' +
        'names, so they are given',
      `Keyfold / ESDK 0x0478 overhead: ${fmtRatio(cmp)}`,
    ],
    tables: [table],
    targets: [
      evaluateTarget(
        { id: 'overhead.64b', description: 'envelope overhead at 64 B', comparator: '<=', threshold: 160, unit: 'B' },
        kf?.overhead ?? null,
      ),
    ],
    data: { plaintextBytes: OVERHEAD_PLAINTEXT, rows } satisfies OverheadData,
  };
}
