// Large bodies for the tests without large buffers.
import { Readable } from 'node:stream';

/** Exactly `bytes` bytes of `chunk` repeated (the last one cut): the test itself holds no big buffer. `pulled` hears of each chunk read. */
export function source(bytes: number, chunk: Buffer, pulled: (n: number) => void = () => undefined): Readable {
  let left = bytes;
  return new Readable({
    read() {
      if (left === 0) return void this.push(null);
      const n = Math.min(left, chunk.length);
      left -= n;
      pulled(n);
      this.push(n === chunk.length ? chunk : chunk.subarray(0, n));
    },
  });
}
