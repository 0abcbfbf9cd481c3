// The request body as the layers see it: streamed to the upstream, never buffered on this path.
// Replay for retries (bounded buffering) is added here, behind open(), by the retry policy.
import type { Readable } from 'node:stream';

export class RequestBody {
  readonly #source: Readable | null;
  #opened = false;

  constructor(source: Readable | null) {
    this.#source = source;
  }

  /** The body stream for an upstream attempt; it can be opened once. */
  open(): Readable | null {
    if (this.#opened && this.#source) throw new Error('the request body was already sent and cannot be replayed');
    this.#opened = true;
    return this.#source;
  }
}

/** Whether an incoming request carries a body (RFC 9112 §6.3). */
export function hasBody(headers: { 'content-length'?: string; 'transfer-encoding'?: string }): boolean {
  if (headers['transfer-encoding'] !== undefined) return true;
  const length = headers['content-length'];
  return length !== undefined && length !== '0';
}
