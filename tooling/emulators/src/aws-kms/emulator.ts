/**
 * AWS KMS emulator speaking the JSON 1.1 protocol that `@aws-sdk/client-kms` sends: `POST /` with
 * `X-Amz-Target: TrentService.<Operation>`, base64 binary fields, epoch-second timestamps, errors as
 * `{"__type", "message"}` with 400 / 500 statuses. SigV4 signatures are not verified, but a request must carry a
 * SigV4 `Authorization` header scoped to the emulator's region, and access keys can be denied from tests.
 * Decrypt, GenerateDataKey and GenerateRandom accept a Nitro `Recipient` and answer with CMS `CiphertextForRecipient`.
 * @module
 */
import { X509Certificate, randomBytes, randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { startServer, type EmulatorServer, type ServiceDefinition, type ServiceResponse } from '../http-server.js';
import { KmsError } from './kms-errors.js';
import {
  assertRecipientConditions,
  checkRecipientConditions,
  envelopeForRecipient,
  recipientAttestation,
  type RecipientAttestation,
  type RecipientConditions,
} from './kms-recipient.js';
import {
  KEY_SPECS,
  KEY_STATES,
  KeyStore,
  assertUsable,
  invalidState,
  currentMaterial,
  rotate,
  rsaDecrypt,
  rsaEncrypt,
  rsaMaxPlaintext,
  symmetricDecrypt,
  symmetricEncrypt,
  type EncryptionAlgorithm,
  type EncryptionContextMap,
  type KeySpec,
  type KeyState,
  type KmsKey,
} from './kms-keys.js';

/** Options of {@link startAwsKmsEmulator}. */
export interface AwsKmsEmulatorOptions {
  /** Port on 127.0.0.1; 0 (default) picks a free one. */
  readonly port?: number;
  /** Region in ARNs and the region requests must be signed for. Default `us-east-1`. */
  readonly region?: string;
  /** Account id in ARNs. Default `111122223333`. */
  readonly accountId?: string;
  /**
   * Trusted roots (PEM or DER) for Recipient attestation documents. When set, the COSE_Sign1 signature and the
   * certificate chain of every document are verified against them (a bad one is a ValidationException); when
   * absent, documents are only parsed.
   */
  readonly attestationRoots?: readonly (string | Uint8Array)[];
}

/** Key metadata as DescribeKey returns it (timestamps in epoch seconds). */
export type KeyMetadataJson = Record<string, unknown> & { KeyId: string; Arn: string };

/** A running AWS KMS emulator. */
export interface AwsKmsEmulator extends EmulatorServer {
  readonly region: string;
  readonly accountId: string;
  /** Creates a key directly (same as the CreateKey operation). */
  createKey(options?: { keySpec?: KeySpec; description?: string; multiRegion?: boolean; alias?: string }): Promise<KeyMetadataJson>;
  /** Requests signed with this access key id get AccessDeniedException. */
  denyAccessKey(accessKeyId: string): void;
  /** Lifts {@link denyAccessKey}. */
  allowAccessKey(accessKeyId: string): void;
  /**
   * Puts a key into a state no emulated operation reaches: `PendingImport` (its imported key material was deleted
   * or expired), `Unavailable` (its custom key store was disconnected), `Creating` / `Updating` (a multi-Region
   * replica being made, UpdatePrimaryRegion completing); or back to `Enabled`. Operations then answer as the key
   * state table says.
   * @throws RangeError for an unknown state; the key's NotFoundException.
   */
  setKeyState(keyId: string, state: KeyState): void;
  /**
   * Stands in for a key policy that allows Decrypt and GenerateDataKey on `keyId` only with a Recipient whose
   * attestation document meets `conditions` (`kms:RecipientAttestation:ImageSha384` / `:PCR<n>` condition keys, hex
   * values): any other call to them, with another document or none, is AccessDeniedException. `undefined` lifts it.
   * @throws TypeError for an unknown condition name or a value that is not hex; the key's NotFoundException.
   */
  requireRecipientAttestation(keyId: string, conditions: RecipientConditions | undefined): void;
}

const TARGET_PREFIX = 'TrentService.';
const ALGORITHMS: readonly EncryptionAlgorithm[] = ['SYMMETRIC_DEFAULT', 'RSAES_OAEP_SHA_1', 'RSAES_OAEP_SHA_256'];
type Body = Record<string, unknown>;

const epoch = (ms: number): number => Math.floor(ms / 1000);

function validation(message: string): KmsError {
  return new KmsError('ValidationException', message);
}

function str(body: Body, name: string, required: true): string;
function str(body: Body, name: string, required?: false): string | undefined;
function str(body: Body, name: string, required = false): string | undefined {
  const v = body[name];
  if (v === undefined || v === null) {
    if (required) throw validation(`1 validation error detected: Value null at '${name}' failed to satisfy constraint: Member must not be null`);
    return undefined;
  }
  if (typeof v !== 'string') throw new KmsError('SerializationException', `${name} must be a string`);
  if (required && v.length === 0) {
    throw validation(`1 validation error detected: Value at '${name}' failed to satisfy constraint: Member must have length greater than or equal to 1`);
  }
  return v;
}

function int(body: Body, name: string): number | undefined {
  const v = body[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new KmsError('SerializationException', `${name} must be an integer`);
  return v;
}

const B64 = /^[A-Za-z0-9+/]*={0,2}$/;

function blob(body: Body, name: string, required: true, max?: number): Buffer;
function blob(body: Body, name: string, required: false, max?: number): Buffer | undefined;
function blob(body: Body, name: string, required: boolean, max = 6144): Buffer | undefined {
  const v = str(body, name, false);
  if (v === undefined) {
    if (required) throw validation(`1 validation error detected: Value null at '${lower(name)}' failed to satisfy constraint: Member must not be null`);
    return undefined;
  }
  if (!B64.test(v) || v.length % 4 !== 0) throw new KmsError('SerializationException', `${name} is not valid base64`);
  const bytes = Buffer.from(v, 'base64');
  if (bytes.length < 1) {
    throw validation(`1 validation error detected: Value at '${lower(name)}' failed to satisfy constraint: Member must have length greater than or equal to 1`);
  }
  if (bytes.length > max) {
    throw validation(`1 validation error detected: Value at '${lower(name)}' failed to satisfy constraint: Member must have length less than or equal to ${max}`);
  }
  return bytes;
}

function lower(name: string): string {
  return name.charAt(0).toLowerCase() + name.slice(1);
}

function context(body: Body, name: string): EncryptionContextMap | undefined {
  const v = body[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) throw new KmsError('SerializationException', `${name} must be a map of strings`);
  for (const [k, val] of Object.entries(v as Record<string, unknown>)) {
    if (typeof val !== 'string') throw new KmsError('SerializationException', `${name} must be a map of strings`);
    if (k.toLowerCase().startsWith('aws:')) throw validation(`${name} keys must not begin with "aws:"`);
  }
  return v as EncryptionContextMap;
}

function grantTokens(body: Body): void {
  const v = body.GrantTokens;
  if (v === undefined || v === null) return;
  if (!Array.isArray(v) || v.some((t) => typeof t !== 'string')) throw new KmsError('SerializationException', 'GrantTokens must be a list of strings');
  if (v.length > 10) throw validation("1 validation error detected: Value at 'grantTokens' failed to satisfy constraint: Member must have length less than or equal to 10");
  if (v.some((t) => t === 'invalid-grant-token')) throw new KmsError('InvalidGrantTokenException', 'The grant token is not valid');
}

function algorithm(body: Body, name: string, key: KmsKey): EncryptionAlgorithm {
  const v = str(body, name) ?? 'SYMMETRIC_DEFAULT';
  if (!(ALGORITHMS as readonly string[]).includes(v)) throw validation(`Value '${v}' at '${lower(name)}' failed to satisfy constraint: Member must satisfy enum value set`);
  const a = v as EncryptionAlgorithm;
  const symmetric = key.spec === 'SYMMETRIC_DEFAULT';
  if (symmetric !== (a === 'SYMMETRIC_DEFAULT')) {
    throw new KmsError('InvalidKeyUsageException', `The operation failed because the encryption algorithm ${a} is not supported by key ${key.arn}`);
  }
  return a;
}

/** The enclave key and PCRs of a `Recipient` parameter, or undefined without one. */
function recipientOf(body: Body, roots: readonly X509Certificate[] | undefined): RecipientAttestation | undefined {
  const r = body.Recipient;
  if (r === undefined || r === null) return undefined;
  if (typeof r !== 'object' || Array.isArray(r)) throw new KmsError('SerializationException', 'Recipient must be a structure');
  const alg = (r as Body).KeyEncryptionAlgorithm;
  if (alg !== undefined && alg !== 'RSAES_OAEP_SHA_256') {
    throw validation(`Value ${JSON.stringify(alg)} at 'recipient.keyEncryptionAlgorithm' failed to satisfy constraint: Member must satisfy enum value set: [RSAES_OAEP_SHA_256]`);
  }
  return recipientAttestation(blob(r as Body, 'AttestationDocument', true, 16_384), roots);
}

function refuseRecipient(body: Body): void {
  if (body.Recipient !== undefined && body.Recipient !== null) throw new KmsError('SerializationException', 'Recipient is not a parameter of this operation');
}

function metadata(k: KmsKey): KeyMetadataJson {
  const symmetric = k.spec === 'SYMMETRIC_DEFAULT';
  return {
    AWSAccountId: k.arn.split(':')[4] ?? '',
    KeyId: k.id,
    Arn: k.arn,
    CreationDate: epoch(k.createdAt),
    Enabled: k.state === 'Enabled',
    Description: k.description,
    KeyUsage: 'ENCRYPT_DECRYPT',
    KeyState: k.state,
    Origin: 'AWS_KMS',
    KeyManager: 'CUSTOMER',
    CustomerMasterKeySpec: k.spec,
    KeySpec: k.spec,
    EncryptionAlgorithms: symmetric ? ['SYMMETRIC_DEFAULT'] : ['RSAES_OAEP_SHA_1', 'RSAES_OAEP_SHA_256'],
    MultiRegion: k.multiRegion,
    ...(k.multiRegion ? { MultiRegionConfiguration: { MultiRegionKeyType: 'PRIMARY', PrimaryKey: { Arn: k.arn, Region: k.arn.split(':')[3] } } } : {}),
    ...(symmetric ? { CurrentKeyMaterialId: currentMaterial(k).id } : {}),
    ...(k.deletionDate !== undefined ? { DeletionDate: epoch(k.deletionDate), PendingDeletionWindowInDays: k.pendingWindowInDays } : {}),
  };
}

/** One operation: validated body in, JSON body out. */
type Operation = (body: Body) => Promise<Body> | Body;

function operations(
  store: KeyStore,
  roots: readonly X509Certificate[] | undefined,
  recipientPolicies: ReadonlyMap<string, RecipientConditions>,
): Record<string, Operation> {
  /** The key policy's Recipient conditions on `key`, if any (see `requireRecipientAttestation`). */
  const policyCheck = (key: KmsKey, attestation: RecipientAttestation | undefined, action: string): void => {
    const conditions = recipientPolicies.get(key.id);
    if (conditions) checkRecipientConditions(conditions, attestation, action, key.arn);
  };
  const symmetricOnly = (key: KmsKey): void => {
    if (key.spec !== 'SYMMETRIC_DEFAULT') throw new KmsError('InvalidKeyUsageException', `${key.arn} key usage is not valid for this operation: the key is asymmetric`);
  };
  /** Finds and checks the key for a decrypt of `ciphertext`; KeyId is optional for symmetric blobs. */
  const decryptKey = (keyIdParam: string | undefined, ciphertext: Buffer): KmsKey => {
    const fromBlob = store.keyOfBlob(ciphertext);
    if (keyIdParam === undefined) {
      if (!fromBlob) throw new KmsError('InvalidCiphertextException', '');
      assertUsable(fromBlob);
      return fromBlob;
    }
    const key = store.resolve(keyIdParam);
    assertUsable(key);
    if (key.spec === 'SYMMETRIC_DEFAULT') {
      if (!fromBlob) throw new KmsError('InvalidCiphertextException', '');
      if (fromBlob !== key) {
        throw new KmsError('IncorrectKeyException', 'The key ID in the request does not identify a CMK that can perform this operation.');
      }
    }
    return key;
  };
  const decrypt = (key: KmsKey, ciphertext: Buffer, alg: EncryptionAlgorithm, ctx: EncryptionContextMap | undefined): { plaintext: Buffer; materialId?: string } => {
    if (key.spec === 'SYMMETRIC_DEFAULT') {
      const r = symmetricDecrypt(key, ciphertext, ctx);
      return { plaintext: r.plaintext, materialId: r.material.id };
    }
    if (ctx !== undefined && Object.keys(ctx).length > 0) throw validation('EncryptionContext is not supported with asymmetric KMS keys');
    return { plaintext: rsaDecrypt(key, ciphertext, alg) };
  };
  const encrypt = (key: KmsKey, plaintext: Buffer, alg: EncryptionAlgorithm, ctx: EncryptionContextMap | undefined): { blob: Buffer; materialId?: string } => {
    if (key.spec === 'SYMMETRIC_DEFAULT') {
      const r = symmetricEncrypt(key, plaintext, ctx);
      return { blob: r.blob, materialId: r.material.id };
    }
    if (ctx !== undefined && Object.keys(ctx).length > 0) throw validation('EncryptionContext is not supported with asymmetric KMS keys');
    const max = rsaMaxPlaintext(key, alg);
    if (plaintext.length > max) throw validation(`Plaintext of ${plaintext.length} bytes is longer than ${max} bytes, the limit of ${alg} with ${key.spec}`);
    return { blob: rsaEncrypt(key, plaintext, alg) };
  };
  const dataKeyLength = (body: Body): number => {
    const spec = str(body, 'KeySpec');
    const n = int(body, 'NumberOfBytes');
    if ((spec === undefined) === (n === undefined)) throw validation('Please specify either number of bytes or key spec.');
    if (spec !== undefined) {
      if (spec === 'AES_256') return 32;
      if (spec === 'AES_128') return 16;
      throw validation(`Value '${spec}' at 'keySpec' failed to satisfy constraint: Member must satisfy enum value set: [AES_256, AES_128]`);
    }
    if (n === undefined || n < 1 || n > 1024) throw validation("Value at 'numberOfBytes' failed to satisfy constraint: Member must have value between 1 and 1024");
    return n;
  };
  const generate = (body: Body, withPlaintext: boolean): Body => {
    const recipient = withPlaintext ? recipientOf(body, roots) : (refuseRecipient(body), undefined);
    grantTokens(body);
    const key = store.resolve(str(body, 'KeyId', true));
    const ctx = context(body, 'EncryptionContext');
    const length = dataKeyLength(body);
    assertUsable(key);
    symmetricOnly(key);
    if (withPlaintext) policyCheck(key, recipient, 'GenerateDataKey');
    const plaintext = randomBytes(length);
    try {
      const r = symmetricEncrypt(key, plaintext, ctx);
      if (recipient) {
        // With a Recipient, KMS sends the key only as CMS for the enclave, and omits Plaintext and KeyMaterialId.
        return { CiphertextBlob: r.blob.toString('base64'), CiphertextForRecipient: envelopeForRecipient(recipient.key, plaintext).toString('base64'), KeyId: key.arn };
      }
      return {
        CiphertextBlob: r.blob.toString('base64'),
        ...(withPlaintext ? { Plaintext: plaintext.toString('base64') } : {}),
        KeyId: key.arn,
        KeyMaterialId: r.material.id,
      };
    } finally {
      plaintext.fill(0);
    }
  };
  const keyOp = (body: Body): KmsKey => store.resolve(str(body, 'KeyId', true));

  return {
    async CreateKey(body) {
      const usage = str(body, 'KeyUsage') ?? 'ENCRYPT_DECRYPT';
      const spec = str(body, 'KeySpec') ?? str(body, 'CustomerMasterKeySpec') ?? 'SYMMETRIC_DEFAULT';
      if (usage !== 'ENCRYPT_DECRYPT') throw new KmsError('UnsupportedOperationException', `KeyUsage ${usage} is not supported by the keyfold emulator`);
      if (!(KEY_SPECS as readonly string[]).includes(spec)) throw new KmsError('UnsupportedOperationException', `KeySpec ${spec} is not supported by the keyfold emulator`);
      const key = await store.create(spec as KeySpec, { description: str(body, 'Description') ?? '', multiRegion: body.MultiRegion === true });
      return { KeyMetadata: metadata(key) };
    },
    DescribeKey(body) {
      grantTokens(body);
      return { KeyMetadata: metadata(keyOp(body)) };
    },
    // Enabling or disabling is refused while the key is pending deletion or import, or in a transient multi-Region
    // state (multi-region-update.html: no "enabling or disabling these keys" while Updating); an Unavailable key
    // (disconnected custom key store) can still be managed.
    EnableKey(body) {
      const key = keyOp(body);
      if (key.state !== 'Enabled' && key.state !== 'Disabled' && key.state !== 'Unavailable') throw invalidState(key);
      key.state = 'Enabled';
      return {};
    },
    DisableKey(body) {
      const key = keyOp(body);
      if (key.state !== 'Enabled' && key.state !== 'Disabled' && key.state !== 'Unavailable') throw invalidState(key);
      key.state = 'Disabled';
      return {};
    },
    ScheduleKeyDeletion(body) {
      const key = keyOp(body);
      if (key.state === 'Creating' || key.state === 'Updating') throw invalidState(key);
      const days = int(body, 'PendingWindowInDays') ?? 30;
      if (days < 7 || days > 30) throw validation("Value at 'pendingWindowInDays' failed to satisfy constraint: Member must have value between 7 and 30");
      key.state = 'PendingDeletion';
      key.pendingWindowInDays = days;
      key.deletionDate = Date.now() + days * 86_400_000;
      return { KeyId: key.arn, DeletionDate: epoch(key.deletionDate), KeyState: 'PendingDeletion', PendingWindowInDays: days };
    },
    CancelKeyDeletion(body) {
      const key = keyOp(body);
      if (key.state !== 'PendingDeletion') throw new KmsError('KMSInvalidStateException', `${key.arn} is not pending deletion.`);
      key.state = 'Disabled';
      delete key.deletionDate;
      delete key.pendingWindowInDays;
      return { KeyId: key.arn };
    },
    CreateAlias(body) {
      const name = str(body, 'AliasName', true);
      const key = store.resolve(str(body, 'TargetKeyId', true));
      store.createAlias(name, key);
      return {};
    },
    Encrypt(body) {
      refuseRecipient(body);
      grantTokens(body);
      const key = keyOp(body);
      const plaintext = blob(body, 'Plaintext', true, 4096);
      const ctx = context(body, 'EncryptionContext');
      const alg = algorithm(body, 'EncryptionAlgorithm', key);
      assertUsable(key);
      const r = encrypt(key, plaintext, alg, ctx);
      return { CiphertextBlob: r.blob.toString('base64'), KeyId: key.arn, EncryptionAlgorithm: alg };
    },
    Decrypt(body) {
      const recipient = recipientOf(body, roots);
      grantTokens(body);
      const ciphertext = blob(body, 'CiphertextBlob', true);
      const ctx = context(body, 'EncryptionContext');
      const key = decryptKey(str(body, 'KeyId'), ciphertext);
      const alg = algorithm(body, 'EncryptionAlgorithm', key);
      policyCheck(key, recipient, 'Decrypt');
      const r = decrypt(key, ciphertext, alg, ctx);
      if (recipient) {
        try {
          return { KeyId: key.arn, CiphertextForRecipient: envelopeForRecipient(recipient.key, r.plaintext).toString('base64'), EncryptionAlgorithm: alg };
        } finally {
          r.plaintext.fill(0);
        }
      }
      return {
        KeyId: key.arn,
        Plaintext: r.plaintext.toString('base64'),
        EncryptionAlgorithm: alg,
        ...(r.materialId ? { KeyMaterialId: r.materialId } : {}),
      };
    },
    GenerateDataKey: (body) => generate(body, true),
    GenerateDataKeyWithoutPlaintext: (body) => generate(body, false),
    ReEncrypt(body) {
      grantTokens(body);
      const ciphertext = blob(body, 'CiphertextBlob', true);
      const sourceCtx = context(body, 'SourceEncryptionContext');
      const destCtx = context(body, 'DestinationEncryptionContext');
      const source = decryptKey(str(body, 'SourceKeyId'), ciphertext);
      const sourceAlg = algorithm(body, 'SourceEncryptionAlgorithm', source);
      const dest = store.resolve(str(body, 'DestinationKeyId', true));
      const destAlg = algorithm(body, 'DestinationEncryptionAlgorithm', dest);
      assertUsable(dest);
      const opened = decrypt(source, ciphertext, sourceAlg, sourceCtx);
      try {
        const sealed = encrypt(dest, opened.plaintext, destAlg, destCtx);
        return {
          CiphertextBlob: sealed.blob.toString('base64'),
          SourceKeyId: source.arn,
          KeyId: dest.arn,
          SourceEncryptionAlgorithm: sourceAlg,
          DestinationEncryptionAlgorithm: destAlg,
          ...(opened.materialId ? { SourceKeyMaterialId: opened.materialId } : {}),
          ...(sealed.materialId ? { DestinationKeyMaterialId: sealed.materialId } : {}),
        };
      } finally {
        opened.plaintext.fill(0);
      }
    },
    GetPublicKey(body) {
      grantTokens(body);
      const key = keyOp(body);
      assertUsable(key);
      if (!key.rsa) throw new KmsError('UnsupportedOperationException', `${key.arn} key usage is not supported for this operation: the key is symmetric`);
      return {
        KeyId: key.arn,
        PublicKey: key.rsa.publicDer.toString('base64'),
        CustomerMasterKeySpec: key.spec,
        KeySpec: key.spec,
        KeyUsage: 'ENCRYPT_DECRYPT',
        EncryptionAlgorithms: ['RSAES_OAEP_SHA_1', 'RSAES_OAEP_SHA_256'],
      };
    },
    GenerateRandom(body) {
      const recipient = recipientOf(body, roots);
      const n = int(body, 'NumberOfBytes');
      if (n === undefined || n < 1 || n > 1024) throw validation("Value at 'numberOfBytes' failed to satisfy constraint: Member must have value between 1 and 1024");
      const random = randomBytes(n);
      if (recipient) return { CiphertextForRecipient: envelopeForRecipient(recipient.key, random).toString('base64') };
      return { Plaintext: random.toString('base64') };
    },
    RotateKeyOnDemand(body) {
      const key = keyOp(body);
      assertUsable(key);
      if (key.spec !== 'SYMMETRIC_DEFAULT') throw new KmsError('UnsupportedOperationException', `${key.arn} does not support on-demand rotation: it is asymmetric`);
      rotate(key);
      return { KeyId: key.arn };
    },
    ListKeyRotations(body) {
      const key = keyOp(body);
      if (key.spec !== 'SYMMETRIC_DEFAULT') throw new KmsError('UnsupportedOperationException', `${key.arn} does not support key rotation`);
      const include = str(body, 'IncludeKeyMaterial') ?? 'ROTATIONS_ONLY';
      if (include !== 'ROTATIONS_ONLY' && include !== 'ALL_KEY_MATERIAL') {
        throw validation(`Value '${include}' at 'includeKeyMaterial' failed to satisfy constraint: Member must satisfy enum value set`);
      }
      const limit = int(body, 'Limit') ?? 100;
      if (limit < 1 || limit > 1000) throw validation("Value at 'limit' failed to satisfy constraint: Member must have value between 1 and 1000");
      const marker = str(body, 'Marker');
      const start = marker === undefined ? 0 : Number.parseInt(marker, 10);
      if (!Number.isInteger(start) || start < 0) throw new KmsError('InvalidMarkerException', 'The marker is not valid');
      const all = key.materials
        .map((m, i) => ({ m, i }))
        .filter(({ i }) => include === 'ALL_KEY_MATERIAL' || i > 0);
      const current = key.materials.length - 1;
      const page = all.slice(start, start + limit).map(({ m, i }) => ({
        KeyId: key.arn,
        KeyMaterialId: m.id,
        KeyMaterialState: i === current ? 'CURRENT' : 'NON_CURRENT',
        ...(m.rotationType ? { RotationDate: epoch(m.createdAt), RotationType: m.rotationType } : {}),
      }));
      const truncated = start + limit < all.length;
      return { Rotations: page, Truncated: truncated, ...(truncated ? { NextMarker: String(start + limit) } : {}) };
    },
  };
}

const CREDENTIAL = /Credential=([^/,\s]+)\/\d{8}\/([^/]+)\/([^/]+)\/aws4_request/;

/**
 * Starts the AWS KMS emulator on 127.0.0.1.
 * @throws the listen error (EADDRINUSE, ...).
 * @example
 * ```ts
 * const emu = await startAwsKmsEmulator({ port: 0 });
 * const client = new KMSClient({ endpoint: emu.url, region: emu.region, credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'test' } });
 * const { KeyMetadata } = await client.send(new CreateKeyCommand({}));
 * emu.faults.set({ throttleRatio: 0.3, serverErrorRatio: 0.1 });
 * await emu.close();
 * ```
 */
export async function startAwsKmsEmulator(options: AwsKmsEmulatorOptions = {}): Promise<AwsKmsEmulator> {
  const region = options.region ?? 'us-east-1';
  const accountId = options.accountId ?? '111122223333';
  if (!/^\d{12}$/.test(accountId)) throw new RangeError(`accountId must be 12 digits; got ${accountId}`);
  const store = new KeyStore(region, accountId);
  let roots: X509Certificate[] | undefined;
  try {
    roots = options.attestationRoots?.map((r) => new X509Certificate(typeof r === 'string' ? r : Buffer.from(r)));
  } catch (cause) {
    throw new TypeError('attestationRoots must be PEM or DER X.509 certificates', { cause });
  }
  const recipientPolicies = new Map<string, RecipientConditions>();
  const ops = operations(store, roots, recipientPolicies);
  const denied = new Set<string>();

  const answer = (status: number, body: unknown): ServiceResponse => ({ status, headers: { 'x-amzn-requestid': randomUUID() }, body });
  const fail = (e: KmsError): ServiceResponse => ({
    status: e.status,
    headers: { 'x-amzn-requestid': randomUUID(), 'x-amzn-errortype': e.type },
    body: e.toBody(),
  });

  const service: ServiceDefinition = {
    contentType: 'application/x-amz-json-1.1',
    operationOf(req: IncomingMessage) {
      const target = req.headers['x-amz-target'];
      return typeof target === 'string' && target.startsWith(TARGET_PREFIX) ? target.slice(TARGET_PREFIX.length) : undefined;
    },
    handle(operation, req, raw) {
      try {
        if (req.method !== 'POST' || (req.url ?? '/') !== '/') throw new KmsError('UnknownOperationException', '');
        const auth = req.headers.authorization;
        if (typeof auth !== 'string' || !auth.startsWith('AWS4-HMAC-SHA256 ')) {
          throw new KmsError('MissingAuthenticationTokenException', 'Missing Authentication Token');
        }
        const cred = CREDENTIAL.exec(auth);
        if (!cred) throw new KmsError('IncompleteSignatureException', 'Authorization header requires a Credential parameter.');
        if (cred[2] !== region) {
          throw new KmsError('InvalidSignatureException', `Credential should be scoped to a valid region, not '${cred[2] ?? ''}'. This emulator is ${region}.`);
        }
        if (cred[3] !== 'kms') throw new KmsError('InvalidSignatureException', `Credential should be scoped to correct service: 'kms'.`);
        const op = operation === undefined ? undefined : ops[operation];
        if (!op) throw new KmsError('UnknownOperationException', '');
        if (denied.has(cred[1] ?? '')) {
          throw new KmsError('AccessDeniedException', `User: arn:aws:iam::${accountId}:user/${cred[1] ?? ''} is not authorized to perform: kms:${operation ?? ''}`);
        }
        let body: Body;
        try {
          const parsed: unknown = raw.length === 0 ? {} : JSON.parse(raw.toString('utf8'));
          if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
          body = parsed as Body;
        } catch {
          throw new KmsError('SerializationException', 'Start of structure or map found where not expected.');
        }
        const result = op(body);
        return result instanceof Promise ? result.then((r) => answer(200, r), (e: unknown) => handleError(e)) : answer(200, result);
      } catch (e) {
        return handleError(e);
      }
    },
    // KMS does not document a delay on ThrottlingException; the AWS SDK's retry strategy reads a Retry-After header
    // when one comes (@smithy/core retry parseRetryAfterHeader), so fault mode sends varied ones to exercise that path.
    throttleResponse: (_op, retryAfterSeconds) => {
      const r = fail(new KmsError('ThrottlingException', 'Rate exceeded'));
      return retryAfterSeconds === undefined ? r : { ...r, headers: { ...r.headers, 'retry-after': String(retryAfterSeconds) } };
    },
    serverErrorResponse: () => fail(new KmsError('KMSInternalException', 'The request was rejected because an internal exception occurred. The request can be retried.')),
  };
  const handleError = (e: unknown): ServiceResponse => {
    if (e instanceof KmsError) return fail(e);
    return fail(new KmsError('KMSInternalException', e instanceof Error ? e.message : String(e)));
  };

  const server = await startServer(service, options.port === undefined ? {} : { port: options.port });
  return {
    get url() {
      return server.url;
    },
    get port() {
      return server.port;
    },
    get faults() {
      return server.faults;
    },
    get counters() {
      return server.counters;
    },
    resetCounters: () => server.resetCounters(),
    close: () => server.close(),
    region,
    accountId,
    async createKey(o = {}) {
      const key = await store.create(o.keySpec ?? 'SYMMETRIC_DEFAULT', {
        ...(o.description !== undefined ? { description: o.description } : {}),
        ...(o.multiRegion !== undefined ? { multiRegion: o.multiRegion } : {}),
      });
      if (o.alias !== undefined) store.createAlias(o.alias, key);
      return metadata(key);
    },
    denyAccessKey: (id) => void denied.add(id),
    allowAccessKey: (id) => void denied.delete(id),
    setKeyState(keyId, state) {
      if (!KEY_STATES.includes(state)) throw new RangeError(`state must be one of ${KEY_STATES.join(', ')}; got ${String(state)}`);
      const key = store.resolve(keyId);
      key.state = state;
      if (state !== 'PendingDeletion') {
        delete key.deletionDate;
        delete key.pendingWindowInDays;
      }
    },
    requireRecipientAttestation(keyId, conditions) {
      const key = store.resolve(keyId);
      if (conditions === undefined) {
        recipientPolicies.delete(key.id);
        return;
      }
      assertRecipientConditions(conditions);
      recipientPolicies.set(key.id, { ...conditions });
    },
  };
}
