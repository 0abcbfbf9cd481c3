// The request body as the layers see it: streamed to the upstream, never buffered on the plain path.
// When a route retries, the body is first read into a replay buffer up to a limit (as Envoy does), so
// that every attempt can send it again; a body over the limit streams once and is not retried. A gRPC
// call's body is not waited for (a bidirectional stream would wait for answers that cannot come before
// it is sent): it is recorded as it streams to the first attempt, and replayable once it ended within
// the limit (recordForReplay).
import { Readable } from 'node:stream';

export class RequestBody {
  readonly #source: Readable | null;
  readonly #declaredLength: number | undefined;
  #opened = false;
  /** The whole body, when it fit the replay buffer. */
  #buffered: Buffer[] | undefined;
  /** What was read before the body outgrew the buffer; the rest is still in the source. */
  #prefix: Buffer[] | undefined;
  /** Applied to the stream of every attempt (a request-bandwidth fault), and to the next one only. */
  #wrappers: ((stream: Readable) => Readable)[] | undefined = undefined;
  #wrapNext: ((stream: Readable) => Readable) | undefined;
  /** recordForReplay's limit: the first attempt's stream keeps what it sends, up to it. */
  #recordLimit: number | undefined;

  constructor(source: Readable | null, declaredLength?: number) {
    this.#source = source;
    this.#declaredLength = declaredLength;
  }

  /**
   * The body's size in bytes when it is known without touching the stream: none, a content-length, or
   * a body buffered whole for replay. A chunked body streamed straight through is not counted (null):
   * a second reader on the stream could take data from the upstream's.
   */
  get bytes(): number | null {
    if (!this.#source) return 0;
    if (this.#buffered) return this.#buffered.reduce((sum, chunk) => sum + chunk.length, 0);
    return this.#declaredLength ?? null;
  }

  /** Whether every attempt can get the whole body (no body, or one buffered whole). */
  get replayable(): boolean {
    return this.#source === null || this.#buffered !== undefined;
  }

  /** Whether a next attempt can get the whole body: replayable, or not yet sent at all (an attempt that never reached the upstream). */
  get canReplay(): boolean {
    return this.replayable || !this.#opened;
  }

  /** Keeps the body as the first attempt sends it, up to `limit` bytes: once it ended within them, it is replayable. */
  recordForReplay(limit: number): void {
    this.#recordLimit = limit;
  }

  /** Reads the body into the replay buffer; resolves false when it is larger than `limit` bytes. */
  bufferForReplay(limit: number): Promise<boolean> {
    const source = this.#source;
    if (!source || this.#buffered || this.#prefix) return Promise.resolve(this.replayable);
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const stop = () => {
        source.off('data', onData);
        source.off('end', onEnd);
        source.off('error', onError);
      };
      const onData = (chunk: Buffer) => {
        chunks.push(chunk);
        size += chunk.length;
        if (size > limit) {
          source.pause();
          stop();
          this.#prefix = chunks;
          resolve(false);
        }
      };
      const onEnd = () => {
        stop();
        this.#buffered = chunks;
        resolve(true);
      };
      const onError = (error: Error) => {
        stop();
        reject(error);
      };
      source.on('data', onData).once('end', onEnd).once('error', onError);
    });
  }

  /** Puts a stage between the body and the upstream: for every attempt from now on, or (`once`) for the next one. */
  wrap(stage: (stream: Readable) => Readable, once = false): void {
    if (once) this.#wrapNext = stage;
    else (this.#wrappers ??= []).push(stage);
  }

  /** The body stream for one upstream attempt: any number of times when buffered whole, else once. */
  open(): Readable | null {
    const stream = this.#open();
    const next = this.#wrapNext;
    this.#wrapNext = undefined;
    if (!stream || (!this.#wrappers && !next)) return stream;
    let wrapped = stream;
    for (const stage of this.#wrappers ?? []) wrapped = stage(wrapped);
    return next ? next(wrapped) : wrapped;
  }

  #open(): Readable | null {
    if (this.#buffered) return Readable.from(this.#buffered, { objectMode: false });
    if (this.#opened && this.#source) throw new Error('the request body was already sent and cannot be replayed');
    this.#opened = true;
    const source = this.#source;
    const prefix = this.#prefix;
    const limit = this.#recordLimit;
    if (source && !prefix && limit !== undefined) {
      const body = this;
      return Readable.from((async function* () {
        let kept: Buffer[] | undefined = [];
        let size = 0;
        for await (const chunk of source) {
          if (kept) {
            size += (chunk as Buffer).length;
            if (size > limit) kept = undefined;
            else kept.push(chunk as Buffer);
          }
          yield chunk as Buffer;
        }
        if (kept) body.#buffered = kept;
      })(), { objectMode: false });
    }
    if (!source || !prefix) return source;
    return Readable.from((async function* () {
      yield* prefix;
      for await (const chunk of source) yield chunk as Buffer;
    })(), { objectMode: false });
  }
}

/** Whether an incoming request carries a body (RFC 9112 §6.3). */
export function hasBody(headers: { 'content-length'?: string; 'transfer-encoding'?: string }): boolean {
  if (headers['transfer-encoding'] !== undefined) return true;
  const length = headers['content-length'];
  return length !== undefined && length !== '0';
}
