/**
 * `google.rpc.RetryInfo`, the error detail in which Google APIs tell a client how long to wait before retrying
 * (google/rpc/error_details.proto: "Clients should wait at least this long between retrying the same request"), in
 * the two forms the Cloud KMS transports carry it: inside a binary `google.rpc.Status` in the gRPC trailer
 * `grpc-status-details-bin`, and as a JSON `details` entry of a REST error. google-gax decodes both into the
 * error's `statusDetails`.
 * @module
 */

const RETRY_INFO_TYPE = 'type.googleapis.com/google.rpc.RetryInfo';

function varint(n: number): Buffer {
  const out: number[] = [];
  let v = n >>> 0;
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  out.push(v);
  return Buffer.from(out);
}

/** One length-delimited protobuf field (wire type 2). */
function bytesField(field: number, value: Buffer): Buffer {
  return Buffer.concat([varint((field << 3) | 2), varint(value.length), value]);
}

/** One varint protobuf field (wire type 0); proto3 leaves zero values out. */
function varintField(field: number, value: number): Buffer {
  return value === 0 ? Buffer.alloc(0) : Buffer.concat([varint(field << 3), varint(value)]);
}

/**
 * A serialised `google.rpc.Status { code, message, details: [Any(RetryInfo { retry_delay: Duration { seconds } })] }`:
 * the value of the `grpc-status-details-bin` trailer.
 */
export function statusWithRetryInfo(code: number, message: string, retryDelaySeconds: number): Buffer {
  const duration = varintField(1, retryDelaySeconds); // google.protobuf.Duration.seconds
  const retryInfo = bytesField(1, duration); // RetryInfo.retry_delay
  const any = Buffer.concat([bytesField(1, Buffer.from(RETRY_INFO_TYPE)), bytesField(2, retryInfo)]);
  return Buffer.concat([varintField(1, code), bytesField(2, Buffer.from(message, 'utf8')), bytesField(3, any)]);
}

/** The JSON `details` entry of a REST error (proto3 JSON: a Duration is a string of seconds ending in `s`). */
export function retryInfoJson(retryDelaySeconds: number): { '@type': string; retryDelay: string } {
  return { '@type': RETRY_INFO_TYPE, retryDelay: `${retryDelaySeconds}s` };
}
