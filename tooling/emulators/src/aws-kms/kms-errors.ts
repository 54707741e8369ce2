/**
 * KMS service errors as the real service sends them: `{"__type": "<Name>", "message": "..."}` with 400 for client
 * errors and 500 for KMSInternalException, KeyUnavailableException and DependencyTimeoutException.
 * @module
 */

const SERVER_ERRORS = new Set(['KMSInternalException', 'KeyUnavailableException', 'DependencyTimeoutException']);

export class KmsError extends Error {
  readonly type: string;
  readonly status: number;

  constructor(type: string, message: string) {
    super(message);
    this.name = 'KmsError';
    this.type = type;
    this.status = SERVER_ERRORS.has(type) ? 500 : 400;
  }

  toBody(): { __type: string; message: string } {
    return { __type: this.type, message: this.message };
  }
}
