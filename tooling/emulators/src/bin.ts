#!/usr/bin/env node
/**
 * `keyfold-emulator aws-kms|vault-transit [--port N]` — runs one emulator on 127.0.0.1 until interrupted, for local
 * development and demos. Faults and counters: `POST /__keyfold/faults` with a JSON FaultSettings body,
 * `GET /__keyfold/counters`; Vault also has `POST /__keyfold/seal` and `/__keyfold/unseal`.
 * @module
 */
import { parseArgs } from 'node:util';
import { startAwsKmsEmulator } from './aws-kms/emulator.js';
import { startVaultTransitEmulator } from './vault/emulator.js';

const USAGE = `usage: keyfold-emulator aws-kms|vault-transit [--port N] [--region R] [--root-token T] [--create-key NAME]

  aws-kms         AWS KMS (JSON 1.1) on http://127.0.0.1:N; sign requests for --region (default us-east-1)
  vault-transit   Vault transit on http://127.0.0.1:N; root token from --root-token (default: root, like vault -dev)
  --port N        port on 127.0.0.1 (default: a free one, printed)
  --create-key    create a key at start: an alias name (alias/NAME) for aws-kms, a transit key name for vault-transit
`;

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    args: process.argv.slice(2),
    allowPositionals: true,
    options: {
      port: { type: 'string', default: '0' },
      region: { type: 'string' },
      'root-token': { type: 'string' },
      'create-key': { type: 'string', multiple: true },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`--port must be 0..65535; got ${values.port}`);
  const kind = positionals[0];
  if (kind === 'aws-kms') {
    const emu = await startAwsKmsEmulator({ port, ...(values.region ? { region: values.region } : {}) });
    const created: string[] = [];
    for (const name of values['create-key'] ?? []) {
      const alias = name.startsWith('alias/') ? name : `alias/${name}`;
      const meta = await emu.createKey({ alias });
      created.push(`${alias} -> ${meta.Arn}`);
    }
    process.stdout.write(`aws-kms emulator on ${emu.url} (region ${emu.region})\n${created.map((c) => `  key ${c}\n`).join('')}`);
    onSignal(() => emu.close());
    return;
  }
  if (kind === 'vault-transit') {
    // A fixed, documented default (as `vault server -dev -dev-root-token-id=root`): tokens are never printed.
    const emu = await startVaultTransitEmulator({ port, rootToken: values['root-token'] ?? 'root' });
    for (const name of values['create-key'] ?? []) emu.createKey(name);
    process.stdout.write(
      `vault-transit emulator on ${emu.url} (root token: the --root-token value, default "root")\n` +
        (values['create-key'] ?? []).map((n) => `  transit key ${n}\n`).join(''),
    );
    onSignal(() => emu.close());
    return;
  }
  process.stderr.write(USAGE);
  process.exitCode = 2;
}

function onSignal(close: () => Promise<void>): void {
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      void close().then(() => process.exit(0));
    });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`keyfold-emulator: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
