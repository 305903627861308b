import { PassThrough, Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { demultiplex, FrameParser } from './demux.js';

type Stream = 'stdout' | 'stderr';
interface Emitted {
  stream: Stream;
  payload: string;
}

/** Builds one frame: [type, 0, 0, 0, uint32 BE length] + payload. */
function frame(type: number, payload: string | Buffer): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  const head = Buffer.alloc(8);
  head[0] = type;
  head.writeUInt32BE(body.length, 4);
  return Buffer.concat([head, body]);
}

function collect(parser: FrameParser, chunks: Buffer[]): Emitted[] {
  const out: Emitted[] = [];
  for (const chunk of chunks)
    parser.push(chunk, (stream, payload) => out.push({ stream, payload: payload.toString('utf8') }));
  return out;
}

describe('FrameParser', () => {
  it.each([
    { name: 'stdout frame', input: frame(1, 'hello'), expected: [{ stream: 'stdout', payload: 'hello' }] },
    { name: 'stderr frame', input: frame(2, 'oops'), expected: [{ stream: 'stderr', payload: 'oops' }] },
    { name: 'multibyte payload', input: frame(1, 'héllo €'), expected: [{ stream: 'stdout', payload: 'héllo €' }] },
    { name: 'type 0 (stdin) is ignored', input: frame(0, 'echo'), expected: [] },
    { name: 'type 3 (unknown) is ignored', input: frame(3, 'what'), expected: [] },
    { name: 'type 255 (unknown) is ignored', input: frame(255, 'what'), expected: [] },
    { name: 'zero-length stdout frame', input: frame(1, ''), expected: [{ stream: 'stdout', payload: '' }] },
    { name: 'zero-length stderr frame', input: frame(2, ''), expected: [{ stream: 'stderr', payload: '' }] },
  ] satisfies { name: string; input: Buffer; expected: Emitted[] }[])('$name', ({ input, expected }) => {
    const parser = new FrameParser();
    expect(collect(parser, [input])).toEqual(expected);
    expect(parser.buffered).toBe(0);
  });

  const sequence = Buffer.concat([
    frame(1, 'out-1'),
    frame(2, 'err-1'),
    frame(0, 'in'),
    frame(1, ''),
    frame(7, 'junk'),
    frame(2, 'err-2'),
    frame(1, 'out-2'),
  ]);
  const sequenceExpected: Emitted[] = [
    { stream: 'stdout', payload: 'out-1' },
    { stream: 'stderr', payload: 'err-1' },
    { stream: 'stdout', payload: '' },
    { stream: 'stderr', payload: 'err-2' },
    { stream: 'stdout', payload: 'out-2' },
  ];

  it('emits many frames from one chunk in order, skipping non-stdout/stderr types', () => {
    expect(collect(new FrameParser(), [sequence])).toEqual(sequenceExpected);
  });

  const single = frame(1, 'split-me');
  it.each(Array.from({ length: single.length - 1 }, (_, i) => i + 1))(
    'reassembles one frame split at byte %i',
    (cut) => {
      const parser = new FrameParser();
      const out: Emitted[] = [];
      const emit = (stream: Stream, payload: Buffer): void => {
        out.push({ stream, payload: payload.toString('utf8') });
      };
      parser.push(single.subarray(0, cut), emit);
      expect(out).toEqual([]);
      expect(parser.buffered).toBe(cut);
      parser.push(single.subarray(cut), emit);
      expect(out).toEqual([{ stream: 'stdout', payload: 'split-me' }]);
      expect(parser.buffered).toBe(0);
    },
  );

  it('reassembles a multi-frame sequence split at every possible boundary', () => {
    for (let cut = 1; cut < sequence.length; cut++) {
      const out = collect(new FrameParser(), [sequence.subarray(0, cut), sequence.subarray(cut)]);
      expect(out, `cut at ${cut}`).toEqual(sequenceExpected);
    }
  });

  it('reassembles a sequence split at every two boundaries (three chunks)', () => {
    for (let a = 1; a < sequence.length - 1; a++) {
      for (let b = a + 1; b < sequence.length; b++) {
        const out = collect(new FrameParser(), [
          sequence.subarray(0, a),
          sequence.subarray(a, b),
          sequence.subarray(b),
        ]);
        expect(out, `cuts at ${a},${b}`).toEqual(sequenceExpected);
      }
    }
  });

  it('reassembles a sequence fed one byte at a time', () => {
    const chunks = Array.from({ length: sequence.length }, (_, i) => sequence.subarray(i, i + 1));
    expect(collect(new FrameParser(), chunks)).toEqual(sequenceExpected);
  });

  it('holds an incomplete trailing frame and reports its size as buffered', () => {
    const parser = new FrameParser();
    const partial = frame(2, 'later').subarray(0, 10);
    const out = collect(parser, [Buffer.concat([frame(1, 'now'), partial])]);
    expect(out).toEqual([{ stream: 'stdout', payload: 'now' }]);
    expect(parser.buffered).toBe(10);
  });

  describe('a 1 MiB payload', () => {
    const payload = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 31 + 7) & 0xff;
    const data = Buffer.concat([frame(1, payload), frame(2, 'tail')]);
    const pieces = (size: number): Buffer[] => {
      const out: Buffer[] = [];
      for (let i = 0; i < data.length; i += size) out.push(data.subarray(i, i + size));
      return out;
    };

    it.each([
      { name: 'in one chunk', chunks: [data] },
      { name: 'in 4 KiB chunks', chunks: pieces(4096) },
      { name: 'in 65535-byte chunks (unaligned)', chunks: pieces(65535) },
      {
        name: 'with the header split in 3-byte pieces',
        chunks: [data.subarray(0, 3), data.subarray(3, 6), data.subarray(6, 9), data.subarray(9)],
      },
    ])('arrives intact $name', ({ chunks }) => {
      const parser = new FrameParser();
      const got: { stream: Stream; payload: Buffer }[] = [];
      for (const chunk of chunks) parser.push(chunk, (stream, p) => got.push({ stream, payload: Buffer.from(p) }));
      expect(got).toHaveLength(2);
      expect(got[0]?.stream).toBe('stdout');
      expect(got[0]?.payload.length).toBe(payload.length);
      expect(got[0]?.payload.equals(payload)).toBe(true);
      expect(got[1]).toEqual({ stream: 'stderr', payload: Buffer.from('tail') });
      expect(parser.buffered).toBe(0);
    });
  });
});

/** A writable whose write callbacks are held until `release()` is called. */
function slowWritable(highWaterMark: number): {
  sink: Writable;
  written: Buffer[];
  release: () => void;
  pendingCallbacks: () => number;
} {
  const written: Buffer[] = [];
  const held: (() => void)[] = [];
  let released = false;
  const sink = new Writable({
    highWaterMark,
    write(chunk: Buffer, _encoding, callback) {
      written.push(Buffer.from(chunk));
      if (released) callback();
      else held.push(() => callback());
    },
  });
  return {
    sink,
    written,
    release: () => {
      released = true;
      for (const cb of held.splice(0)) cb();
    },
    pendingCallbacks: () => held.length,
  };
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('demultiplex', () => {
  it('routes stdout to the writable and stderr to onStderr, and ends stdout when the source ends', async () => {
    const source = new PassThrough();
    const written: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        written.push(chunk.toString('utf8'));
        callback();
      },
    });
    const stderr: string[] = [];
    const done = demultiplex(source, { stdout: sink, onStderr: (c) => stderr.push(c.toString('utf8')) });

    const data = Buffer.concat([frame(1, 'a'), frame(2, 'E1'), frame(0, 'ignored'), frame(1, 'b')]);
    source.write(data.subarray(0, 5));
    source.write(data.subarray(5));
    source.end(frame(2, 'E2'));
    await done;

    expect(written.join('')).toBe('ab');
    expect(stderr).toEqual(['E1', 'E2']);
    expect(sink.writableEnded).toBe(true);
  });

  it('resolves and ends stdout when the source errors', async () => {
    const source = new PassThrough();
    const sink = new PassThrough();
    const done = demultiplex(source, { stdout: sink, onStderr: () => undefined });
    source.destroy(new Error('socket reset'));
    await expect(done).resolves.toBeUndefined();
    expect(sink.writableEnded).toBe(true);
  });

  it('pauses the source while stdout is backed up, still delivers stderr, and resumes on drain', async () => {
    const source = new PassThrough();
    const slow = slowWritable(4);
    const stderr: string[] = [];
    const done = demultiplex(source, { stdout: slow.sink, onStderr: (c) => stderr.push(c.toString('utf8')) });
    let finished = false;
    void done.then(() => {
      finished = true;
    });

    // One chunk: a stdout payload larger than the highWaterMark, then stderr behind it.
    source.write(Buffer.concat([frame(1, 'big-stdout-payload'), frame(2, 'err-in-same-chunk')]));
    await tick();

    expect(source.isPaused()).toBe(true);
    expect(slow.pendingCallbacks()).toBe(1);
    expect(stderr).toEqual(['err-in-same-chunk']);

    // While paused, nothing more is read from the source.
    source.write(Buffer.concat([frame(2, 'err-queued'), frame(1, 'more')]));
    await tick();
    expect(source.isPaused()).toBe(true);
    expect(stderr).toEqual(['err-in-same-chunk']);
    expect(slow.written.map((b) => b.toString())).toEqual(['big-stdout-payload']);

    slow.release();
    await tick();
    await tick();

    expect(stderr).toEqual(['err-in-same-chunk', 'err-queued']);
    expect(slow.written.map((b) => b.toString())).toEqual(['big-stdout-payload', 'more']);
    expect(finished).toBe(false);
    expect(slow.sink.writableEnded).toBe(false);

    source.end();
    await done;
    expect(slow.sink.writableEnded).toBe(true);
  });

  it('keeps draining the source (and stderr) after the stdout consumer is destroyed', async () => {
    const source = new PassThrough();
    const slow = slowWritable(4);
    const stderr: string[] = [];
    const done = demultiplex(source, { stdout: slow.sink, onStderr: (c) => stderr.push(c.toString('utf8')) });

    source.write(frame(1, 'blocks-the-sink'));
    await tick();
    expect(source.isPaused()).toBe(true);

    slow.sink.destroy();
    await tick();
    source.end(Buffer.concat([frame(1, 'dropped'), frame(2, 'still-seen')]));
    await done;

    expect(stderr).toEqual(['still-seen']);
    expect(slow.written.map((b) => b.toString())).toEqual(['blocks-the-sink']);
  });
});
