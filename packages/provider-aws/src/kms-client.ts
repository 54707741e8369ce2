/**
 * The adapter between the provider and the AWS SDK: the shape of the client it needs (one `send` method, as
 * `KMSClient` has), and the eight KMS calls it makes, each cancelled by the deadline's AbortSignal. Nothing else in
 * this package talks to the SDK's client.
 * @module
 */
import {
  DecryptCommand,
  DescribeKeyCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  GetPublicKeyCommand,
  ListKeyRotationsCommand,
  ReEncryptCommand,
  RotateKeyOnDemandCommand,
  type DecryptCommandInput,
  type DecryptCommandOutput,
  type DescribeKeyCommandInput,
  type DescribeKeyCommandOutput,
  type EncryptCommandInput,
  type EncryptCommandOutput,
  type GenerateDataKeyCommandInput,
  type GenerateDataKeyCommandOutput,
  type GetPublicKeyCommandInput,
  type GetPublicKeyCommandOutput,
  type ListKeyRotationsCommandInput,
  type ListKeyRotationsCommandOutput,
  type ReEncryptCommandInput,
  type ReEncryptCommandOutput,
  type RotateKeyOnDemandCommandInput,
  type RotateKeyOnDemandCommandOutput,
} from '@aws-sdk/client-kms';

/**
 * The commands the provider sends.
 * @example
 * ```ts
 * const traced: KmsClientLike = { send: (command: KmsCommand, options) => { log(command.constructor.name); return client.send(command, options); } };
 * ```
 */
export type KmsCommand =
  | DecryptCommand
  | DescribeKeyCommand
  | EncryptCommand
  | GenerateDataKeyCommand
  | GetPublicKeyCommand
  | ListKeyRotationsCommand
  | ReEncryptCommand
  | RotateKeyOnDemandCommand;

/**
 * What the provider needs from a KMS client: `send(command, { abortSignal })`. A `KMSClient` from
 * `@aws-sdk/client-kms` fits; so does any wrapper with that method (instrumentation, a client pool).
 * @example
 * ```ts
 * const client: KmsClientLike = new KMSClient({ region: 'eu-west-1' });
 * ```
 */
export interface KmsClientLike {
  send(command: KmsCommand, options?: { abortSignal?: AbortSignal }): Promise<unknown>;
}

/** The calls the provider makes, typed. */
export class KmsCalls {
  readonly #client: KmsClientLike;

  constructor(client: KmsClientLike) {
    this.#client = client;
  }

  #send<T>(command: KmsCommand, signal: AbortSignal | undefined): Promise<T> {
    return this.#client.send(command, signal ? { abortSignal: signal } : {}) as Promise<T>;
  }

  encrypt(input: EncryptCommandInput, signal?: AbortSignal): Promise<EncryptCommandOutput> {
    return this.#send(new EncryptCommand(input), signal);
  }

  decrypt(input: DecryptCommandInput, signal?: AbortSignal): Promise<DecryptCommandOutput> {
    return this.#send(new DecryptCommand(input), signal);
  }

  generateDataKey(input: GenerateDataKeyCommandInput, signal?: AbortSignal): Promise<GenerateDataKeyCommandOutput> {
    return this.#send(new GenerateDataKeyCommand(input), signal);
  }

  reEncrypt(input: ReEncryptCommandInput, signal?: AbortSignal): Promise<ReEncryptCommandOutput> {
    return this.#send(new ReEncryptCommand(input), signal);
  }

  describeKey(input: DescribeKeyCommandInput, signal?: AbortSignal): Promise<DescribeKeyCommandOutput> {
    return this.#send(new DescribeKeyCommand(input), signal);
  }

  getPublicKey(input: GetPublicKeyCommandInput, signal?: AbortSignal): Promise<GetPublicKeyCommandOutput> {
    return this.#send(new GetPublicKeyCommand(input), signal);
  }

  listKeyRotations(input: ListKeyRotationsCommandInput, signal?: AbortSignal): Promise<ListKeyRotationsCommandOutput> {
    return this.#send(new ListKeyRotationsCommand(input), signal);
  }

  rotateKeyOnDemand(input: RotateKeyOnDemandCommandInput, signal?: AbortSignal): Promise<RotateKeyOnDemandCommandOutput> {
    return this.#send(new RotateKeyOnDemandCommand(input), signal);
  }
}
