/**
 * The shared KeyProvider conformance suite against Cloud KMS through the real `KeyManagementServiceClient`, over gRPC
 * and over the REST fallback, talking to the emulator. Every provider gets a fresh CryptoKey; `rotate` creates a new
 * version and makes it primary; the failing backend is a second emulator in outage.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runProviderConformance } from '@keyfold/conformance';
import type { KeyProvider } from '@keyfold/envelope-core';
import { createGcpKmsProvider, type GcpKmsProvider } from '../src/index.js';
import { asProviderClient, freshKeyId, sdkClient, startGcpKmsEmulator, type GcpKmsEmulator, type Transport } from './helpers.js';

let emu: GcpKmsEmulator;
let down: GcpKmsEmulator;
const clients = new Map<string, ReturnType<typeof sdkClient>>();

beforeAll(async () => {
  emu = await startGcpKmsEmulator();
  down = await startGcpKmsEmulator();
});

afterAll(async () => {
  await Promise.all([...clients.values()].map((c) => c.close()));
  await Promise.all([emu.close(), down.close()]);
});

function clientFor(e: GcpKmsEmulator, transport: Transport): ReturnType<typeof sdkClient> {
  const id = `${e.grpcPort}/${transport}`;
  let c = clients.get(id);
  if (!c) {
    c = sdkClient(e, transport);
    clients.set(id, c);
  }
  return c;
}

const fastRetry = { retry: { baseDelayMs: 1, maxDelayMs: 5 } };

for (const transport of ['grpc', 'rest'] as const) {
  runProviderConformance({
    name: `gcp-kms over ${transport === 'grpc' ? 'gRPC' : 'REST'}`,
    makeProvider: () =>
      createGcpKmsProvider({ keyName: emu.createKey(freshKeyId(transport)), client: asProviderClient(clientFor(emu, transport)), resilience: fastRetry }),
    rotate: async (p: KeyProvider) => {
      await (p as GcpKmsProvider).rotate();
      return p;
    },
    makeFailingProvider: async () => {
      down.faults.clear();
      const provider = await createGcpKmsProvider({
        keyName: down.createKey(freshKeyId(`down-${transport}`)),
        client: asProviderClient(clientFor(down, transport)),
        resilience: { ...fastRetry, circuitBreaker: false },
      });
      const context = { tenant: 'acme' };
      const wrapped = await provider.wrapKey(new Uint8Array(32).fill(1), context);
      down.faults.set({ outage: true });
      return { provider, expectCode: 'UNAVAILABLE', wrapped, context };
    },
    describe,
    it,
    expect,
    timeoutMs: 60_000,
  });
}
