/**
 * Test wiring: the Cloud KMS emulator of tooling/emulators and real `KeyManagementServiceClient`s talking to it over
 * gRPC (google-gax's own grpc-js, insecure channel) and over the REST fallback (plain http). The auth client is a
 * PassThroughClient, so nothing tries to reach a metadata server.
 */
import { KeyManagementServiceClient } from '@google-cloud/kms';
import * as gax from 'google-gax';
import { startGcpKmsEmulator, type GcpKmsEmulator } from '../../../tooling/emulators/src/gcp-kms/index.js';
import type { GcpKmsClient } from '../src/index.js';

export type Transport = 'grpc' | 'rest';

export { startGcpKmsEmulator, type GcpKmsEmulator };

/** A real SDK client for the emulator over `transport`. */
export function sdkClient(emu: GcpKmsEmulator, transport: Transport): KeyManagementServiceClient {
  const authClient = new gax.googleAuthLibrary.PassThroughClient();
  return transport === 'grpc'
    ? new KeyManagementServiceClient({
        apiEndpoint: emu.host,
        port: emu.grpcPort,
        sslCreds: gax.grpc.credentials.createInsecure(),
        authClient,
      })
    : new KeyManagementServiceClient({ fallback: 'rest', protocol: 'http', apiEndpoint: emu.host, port: emu.restPort, authClient });
}

/** The SDK client as the provider's client type (checks at compile time that the real client fits the shape). */
export function asProviderClient(client: KeyManagementServiceClient): GcpKmsClient {
  return client;
}

let counter = 0;
/** A fresh key id, unique within the test process. */
export function freshKeyId(prefix = 'kek'): string {
  counter++;
  return `${prefix}-${process.pid}-${counter}`;
}
