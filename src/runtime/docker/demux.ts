/**
 * Splits Docker's multiplexed attach stream (8-byte frame headers: stream type, 3 zero bytes,
 * big-endian payload length) into stdout and stderr.
 *
 * Unlike dockerode's demuxStream this one applies backpressure: when the stdout consumer is slow
 * the source is paused, while stderr is handed to a sink that must never block (a ring buffer), so
 * a stderr flood can never stall stdout and a slow stdout reader never grows memory without bound.
 */
import type { Readable, Writable } from 'node:stream';

const HEADER_BYTES = 8;
const STREAM_STDOUT = 1;
const STREAM_STDERR = 2;

export interface DemuxTargets {
  /** Receives stdout payloads; a `false` from write() pauses the source until 'drain'. */
  stdout: Writable;
  /** Receives stderr payloads synchronously; must not block. */
  onStderr: (chunk: Buffer) => void;
}

/** Incremental frame parser (pure; no streams). */
export class FrameParser {
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  /** Feeds bytes; calls `emit` for every complete frame payload in order. */
  push(chunk: Buffer, emit: (stream: 'stdout' | 'stderr', payload: Buffer) => void): void {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    for (;;) {
      if (this.pendingBytes < HEADER_BYTES) return;
      const head = this.peek(HEADER_BYTES);
      const length = head.readUInt32BE(4);
      if (this.pendingBytes < HEADER_BYTES + length) return;
      const frame = this.take(HEADER_BYTES + length);
      const type = frame[0];
      const payload = frame.subarray(HEADER_BYTES);
      // Type 0 (stdin echo) and unknown types carry nothing for us.
      if (type === STREAM_STDOUT) emit('stdout', payload);
      else if (type === STREAM_STDERR) emit('stderr', payload);
    }
  }

  /** Bytes of an incomplete frame still held. */
  get buffered(): number {
    return this.pendingBytes;
  }

  private peek(n: number): Buffer {
    const first = this.pending[0] as Buffer;
    if (first.length >= n) return first.subarray(0, n);
    return Buffer.concat(this.pending, this.pendingBytes).subarray(0, n);
  }

  private take(n: number): Buffer {
    const all =
      this.pending.length === 1 ? (this.pending[0] as Buffer) : Buffer.concat(this.pending, this.pendingBytes);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.pending = rest.length > 0 ? [rest] : [];
    this.pendingBytes = rest.length;
    return out;
  }
}

/**
 * Pipes `source` into the targets until it ends. Resolves when the source has ended or closed;
 * stdout is ended then. Never rejects: a source error ends the streams the same way.
 */
export function demultiplex(source: Readable, targets: DemuxTargets): Promise<void> {
  const parser = new FrameParser();
  return new Promise<void>((resolve) => {
    let finished = false;
    const finish = (): void => {
      if (finished) return;
      finished = true;
      source.off('data', onData);
      targets.stdout.off('drain', onDrain);
      if (!targets.stdout.writableEnded) targets.stdout.end();
      resolve();
    };
    const onDrain = (): void => {
      source.resume();
    };
    const onData = (chunk: Buffer): void => {
      let blocked = false;
      parser.push(chunk, (stream, payload) => {
        if (stream === 'stderr') targets.onStderr(payload);
        else if (!targets.stdout.destroyed && !targets.stdout.write(payload)) blocked = true;
      });
      if (blocked) {
        source.pause();
        targets.stdout.once('drain', onDrain);
      }
    };
    source.on('data', onData);
    source.once('end', finish);
    source.once('close', finish);
    source.once('error', finish);
    targets.stdout.once('close', () => {
      // The consumer went away: keep draining so stderr and the exit are still observed.
      targets.stdout.off('drain', onDrain);
      source.resume();
    });
  });
}
