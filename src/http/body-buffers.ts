// Reusable shared-memory buffers for large request bodies (the ones a worker
// parses). First writes to fresh memory page-fault (~3.5 ms per MiB on the
// reference VM, docs/performance.md), so reading a large body into a new
// buffer holds the event loop; a few recycled buffers make it a plain memcpy
// spread over the body's chunks.

const MAX_CACHED = 2;

export class BodyBufferPool {
  private readonly free: SharedArrayBuffer[] = [];

  /** A buffer of at least `size` bytes (a recycled one when one is big enough). */
  take(size: number): SharedArrayBuffer {
    for (let i = 0; i < this.free.length; i++) {
      if (this.free[i].byteLength >= size) return this.free.splice(i, 1)[0];
    }
    // Round up so a recycled buffer fits the next, slightly larger body too.
    return new SharedArrayBuffer(Math.max(size, 2 ** Math.ceil(Math.log2(size))));
  }

  /** Gives a buffer back once nothing reads it any more. */
  give(buffer: ArrayBufferLike): void {
    if (!(buffer instanceof SharedArrayBuffer)) return;
    if (this.free.length >= MAX_CACHED) {
      // keep the largest ones
      this.free.sort((a, b) => a.byteLength - b.byteLength);
      if (this.free[0].byteLength >= buffer.byteLength) return;
      this.free.shift();
    }
    this.free.push(buffer);
  }
}
