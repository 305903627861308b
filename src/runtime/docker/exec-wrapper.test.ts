import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DEFAULT_NOFILE_PER_IDENTITY, DEFAULT_NPROC_PER_IDENTITY } from '../identity.js';
import { PRELUDE_STOP_EXIT } from '../types.js';
import { EXEC_MARKER, PID_MARKER, PidLineReader, PreludeReader, wrapCommand } from './exec-wrapper.js';
import type { WrapOptions } from './exec-wrapper.js';

const hasPrlimit = ['/usr/bin/prlimit', '/bin/prlimit', '/usr/sbin/prlimit'].some((p) => existsSync(p));

describe('wrapCommand', () => {
  it.each([
    { name: 'a single word', cmd: ['node'] },
    { name: 'a command with args', cmd: ['node', 'server.js', '--port', '3000'] },
    { name: 'args with shell metacharacters', cmd: ['sh', '-c', 'echo $HOME; rm -rf / && `id`', 'it\'s "quoted"'] },
  ])('returns [/bin/sh, -c, script, mcp-box, ...cmd] for $name', ({ cmd }) => {
    const argv = wrapCommand(cmd);
    expect(argv.slice(0, 2)).toEqual(['/bin/sh', '-c']);
    expect(argv[3]).toBe('mcp-box');
    expect(argv.slice(4)).toEqual(cmd);
    expect(argv).toHaveLength(4 + cmd.length);
  });

  it('prints the PID marker to stderr and execs "$@" without limits', () => {
    const script = wrapCommand(['true'])[2] ?? '';
    expect(script).toContain(`printf '${PID_MARKER}%s\\n' "$$" >&2`);
    expect(script).toMatch(/exec "\$@"$/);
    expect(script).not.toContain('prlimit');
  });

  it.each([
    { name: 'defaults', limits: {}, nproc: DEFAULT_NPROC_PER_IDENTITY, nofile: DEFAULT_NOFILE_PER_IDENTITY },
    { name: 'nproc only', limits: { nproc: 7 }, nproc: 7, nofile: DEFAULT_NOFILE_PER_IDENTITY },
    { name: 'nofile only', limits: { nofile: 64 }, nproc: DEFAULT_NPROC_PER_IDENTITY, nofile: 64 },
    { name: 'both', limits: { nproc: 1, nofile: 16 }, nproc: 1, nofile: 16 },
  ] satisfies { name: string; limits: NonNullable<WrapOptions['limits']>; nproc: number; nofile: number }[])(
    'applies prlimit with nproc and nofile when limits are given ($name)',
    ({ limits, nproc, nofile }) => {
      const script = wrapCommand(['node'], { limits })[2] ?? '';
      expect(script).toContain(
        `exec prlimit --nproc=${nproc}:${nproc} --nofile=${nofile}:${nofile} --core=0:0 -- "$@"`,
      );
    },
  );

  it.each([
    { name: 'empty argv', cmd: [] },
    { name: 'empty program', cmd: [''] },
    { name: 'empty program with args', cmd: ['', 'x'] },
  ])('rejects $name', ({ cmd }) => {
    expect(() => wrapCommand(cmd)).toThrow(RangeError);
    expect(() => wrapCommand(cmd)).toThrow(/command must not be empty/);
  });

  it.each([
    { nproc: 0 },
    { nproc: -1 },
    { nproc: 1.5 },
    { nproc: Number.NaN },
    { nofile: 15 },
    { nofile: 0 },
    { nofile: 100.5 },
    { nofile: Number.POSITIVE_INFINITY },
    { fsize: 0 },
    { fsize: 1.5 },
  ])('rejects invalid limits %o', (limits) => {
    expect(() => wrapCommand(['node'], { limits })).toThrow(RangeError);
    expect(() => wrapCommand(['node'], { limits })).toThrow(/invalid limits/);
  });

  it('adds RLIMIT_FSIZE only when fsize is given', () => {
    expect(wrapCommand(['node'], { limits: { fsize: 1048576 } })[2]).toContain(
      '--core=0:0 --fsize=1048576:1048576 -- "$@"',
    );
    expect(wrapCommand(['node'], { limits: {} })[2]).not.toContain('--fsize');
  });

  it.runIf(hasPrlimit)('runs under a real sh with prlimit applying fsize: a write past it fails with EFBIG', () => {
    const script =
      "import tempfile\nf = tempfile.TemporaryFile()\ntry:\n  f.write(b'x' * 200000); f.flush(); " +
      "print('wrote')\nexcept OSError as e:\n  print('errno', e.errno)";
    const [file, ...rest] = wrapCommand(['python3', '-c', script], { limits: { fsize: 65536 } });
    const res = spawnSync(file ?? '', rest, { encoding: 'utf8' });
    expect(res.stdout.trim()).toBe('errno 27');
  });

  it('never puts the user command or its arguments into the script', () => {
    const secret = 'S3CR3T-token-value';
    const cmd = ['node', `--token=${secret}`, '/workspace/app/server.js', '$(reboot)'];
    for (const opts of [{}, { limits: {} }, { limits: { nproc: 9, nofile: 99 } }] satisfies WrapOptions[]) {
      const script = wrapCommand(cmd, opts)[2] ?? '';
      for (const part of cmd) expect(script).not.toContain(part);
      // The script depends on the options only, never on the command.
      expect(script).toBe(wrapCommand(['other'], opts)[2]);
    }
  });

  it('runs under a real sh: marker line first with the exec PID, arguments passed verbatim', () => {
    const args = ['a b', "it's", '$(echo injected)', '`id`', '"q"', ';', ''];
    const [file, ...rest] = wrapCommand(['printf', '%s|', ...args]);
    const res = spawnSync(file ?? '', rest, { encoding: 'utf8' });
    expect(res.status).toBe(0);
    expect(res.stdout).toBe(args.map((a) => `${a}|`).join(''));
    expect(res.stderr).toBe(`${PID_MARKER}${res.pid}\n`);
  });

  it.runIf(hasPrlimit)('runs under a real sh with prlimit applying nofile', () => {
    const [file, ...rest] = wrapCommand(['sh', '-c', 'ulimit -n'], { limits: { nproc: 4096, nofile: 64 } });
    const res = spawnSync(file ?? '', rest, { encoding: 'utf8' });
    expect(res.status).toBe(0);
    expect(res.stdout.trim()).toBe('64');
    expect(res.stderr).toBe(`${PID_MARKER}${res.pid}\n`);
  });
});

/** Feeds `chunks` to a fresh reader; returns what was passed on (as one string and as chunks). */
function feed(
  chunks: (string | Buffer)[],
  end = false,
): { reader: PidLineReader; passed: string; passedChunks: Buffer[] } {
  const passedChunks: Buffer[] = [];
  const reader = new PidLineReader((chunk) => passedChunks.push(Buffer.from(chunk)));
  for (const c of chunks) reader.push(typeof c === 'string' ? Buffer.from(c, 'latin1') : c);
  if (end) reader.end();
  return { reader, passed: Buffer.concat(passedChunks).toString('latin1'), passedChunks };
}

describe('PidLineReader', () => {
  const withMarker = `${PID_MARKER}4242\nfirst real line\nsecond\n`;

  it('strips the marker line and records the pid', async () => {
    const { reader, passed } = feed([withMarker]);
    expect(reader.pid).toBe(4242);
    expect(passed).toBe('first real line\nsecond\n');
    await expect(reader.waitForPid()).resolves.toBe(4242);
  });

  it('passes nothing when the chunk is only the marker line', async () => {
    const { reader, passedChunks } = feed([`${PID_MARKER}7\n`]);
    expect(reader.pid).toBe(7);
    expect(passedChunks).toEqual([]);
    await expect(reader.waitForPid()).resolves.toBe(7);
  });

  it.each(Array.from({ length: withMarker.length - 1 }, (_, i) => i + 1))(
    'strips the marker when the input is split at byte %i',
    async (cut) => {
      const { reader, passed } = feed([withMarker.slice(0, cut), withMarker.slice(cut)]);
      expect(reader.pid).toBe(4242);
      expect(passed).toBe('first real line\nsecond\n');
      await expect(reader.waitForPid()).resolves.toBe(4242);
    },
  );

  it('strips the marker when it arrives one byte at a time', () => {
    const { reader, passed } = feed([...withMarker]);
    expect(reader.pid).toBe(4242);
    expect(passed).toBe('first real line\nsecond\n');
  });

  it('passes later chunks through unchanged, including a later marker-looking line', () => {
    const { reader, passedChunks } = feed([`${PID_MARKER}1\n`, 'a\n', `${PID_MARKER}2\n`, 'b']);
    expect(reader.pid).toBe(1);
    expect(passedChunks.map((c) => c.toString())).toEqual(['a\n', `${PID_MARKER}2\n`, 'b']);
  });

  it.each([
    { name: 'an ordinary first line', input: ['hello\nworld\n'] },
    { name: 'an ordinary first line split', input: ['hel', 'lo\nwor', 'ld\n'] },
    { name: 'a marker without digits', input: [`${PID_MARKER}\nrest\n`] },
    { name: 'a marker with trailing junk', input: [`${PID_MARKER}12x\nrest\n`] },
    { name: 'a marker with a negative number', input: [`${PID_MARKER}-3\nrest\n`] },
    { name: 'a marker not at the start of the line', input: [` ${PID_MARKER}12\nrest\n`] },
    { name: 'a marker on the second line', input: [`boom\n${PID_MARKER}12\n`] },
    { name: 'a long first line without newline (>= 64 bytes)', input: ['x'.repeat(40), 'y'.repeat(40), '\nz'] },
    { name: 'an empty first line', input: ['\n', `${PID_MARKER}5\n`] },
  ])('passes everything through unchanged when the first line is $name', async ({ input }) => {
    const { reader, passed } = feed(input);
    expect(reader.pid).toBeNull();
    expect(passed).toBe(input.join(''));
    await expect(reader.waitForPid()).resolves.toBeNull();
  });

  it('passes binary bytes through unchanged when the first line is not the marker', () => {
    const bytes = Buffer.from([0xff, 0x00, 0x0a, 0xc3, 0x28, 0x0a]);
    const passedChunks: Buffer[] = [];
    const reader = new PidLineReader((c) => passedChunks.push(Buffer.from(c)));
    reader.push(bytes.subarray(0, 1));
    reader.push(bytes.subarray(1));
    expect(Buffer.concat(passedChunks).equals(bytes)).toBe(true);
    expect(reader.pid).toBeNull();
  });

  it.each([
    { name: 'a partial marker', input: ['mcp-box:pi'] },
    { name: 'a complete marker without newline', input: [`${PID_MARKER}99`] },
    { name: 'a short line without newline', input: ['fatal'] },
  ])('end() flushes held bytes ($name) and waitForPid resolves null', async ({ input }) => {
    const passed: Buffer[] = [];
    const reader = new PidLineReader((c) => passed.push(Buffer.from(c)));
    for (const c of input) reader.push(Buffer.from(c));
    expect(passed).toEqual([]);
    const pid = reader.waitForPid();
    reader.end();
    expect(Buffer.concat(passed).toString()).toBe(input.join(''));
    await expect(pid).resolves.toBeNull();
    expect(reader.pid).toBeNull();
  });

  it('end() without any input passes nothing and resolves null', async () => {
    const { reader, passedChunks } = feed([], true);
    expect(passedChunks).toEqual([]);
    await expect(reader.waitForPid()).resolves.toBeNull();
  });

  it('end() after the marker keeps the recorded pid and passes nothing extra', async () => {
    const { reader, passed } = feed([`${PID_MARKER}31\ntail`], true);
    expect(passed).toBe('tail');
    await expect(reader.waitForPid()).resolves.toBe(31);
  });

  it('waitForPid() called before the marker arrives resolves once it does', async () => {
    const reader = new PidLineReader(() => undefined);
    let settled: number | null | undefined;
    const waiting = reader.waitForPid().then((pid) => {
      settled = pid;
    });
    reader.push(Buffer.from(`${PID_MARKER}1`));
    await Promise.resolve();
    expect(settled).toBeUndefined();
    reader.push(Buffer.from(`23\n`));
    await waiting;
    expect(settled).toBe(123);
  });

  it('waitForPid() resolves every waiter', async () => {
    const reader = new PidLineReader(() => undefined);
    const waiters = [reader.waitForPid(), reader.waitForPid(), reader.waitForPid()];
    reader.push(Buffer.from(`${PID_MARKER}8\n`));
    await expect(Promise.all(waiters)).resolves.toEqual([8, 8, 8]);
  });
});

describe('wrapCommand with a prelude', () => {
  /** Runs the wrapped command under the host's sh with `input` on stdin. */
  const run = (prelude: string, input: string, cmd: string[], cwd = '/', exclusive = false, stdinBytes = 0) => {
    const [file, ...rest] = wrapCommand(cmd, { prelude: { script: prelude, stdinBytes, exclusive, cwd } });
    return spawnSync(file ?? '', rest, { input, encoding: 'utf8' });
  };

  it('gives the prelude exactly its bytes and the command the rest of stdin, in the folder named', () => {
    const res = run(
      'echo "prelude got [$(cat)]"',
      'tar-bytes|{"jsonrpc":"2.0"}\n',
      ['sh', '-c', 'pwd; cat'],
      '/tmp',
      false,
      10,
    );
    expect(res.status).toBe(0);
    expect(res.stdout).toBe('/tmp\n{"jsonrpc":"2.0"}\n');
    const lines = res.stderr.split('\n');
    expect(lines[0]).toBe(`${PID_MARKER}${res.pid}`);
    // The prelude's output is on stderr, before the marker: never on the command's stdout.
    expect(lines.slice(1, 3)).toEqual(['prelude got [tar-bytes|]', EXEC_MARKER]);
  });

  it('does not run the command when the prelude exits PRELUDE_STOP_EXIT, or fails', () => {
    for (const code of [PRELUDE_STOP_EXIT, 2]) {
      const res = run(`echo stopping; exit ${code}`, '', ['sh', '-c', 'echo RAN']);
      expect(res.status).toBe(code);
      expect(res.stdout).toBe('');
      expect(res.stderr).toContain('stopping');
      expect(res.stderr).not.toContain(EXEC_MARKER);
    }
  });

  it('fails (no marker, no command) when the folder to start in does not exist', () => {
    const res = run('true', '', ['sh', '-c', 'echo RAN'], '/no/such/folder');
    expect(res.status).not.toBe(0);
    expect(res.stdout).toBe('');
    expect(res.stderr).not.toContain(EXEC_MARKER);
  });

  it('keeps the PID of the shell for the command (exec), with the prelude in a subshell', () => {
    const res = run('echo "prelude in $$"', '', ['sh', '-c', 'echo "$$"']);
    expect(res.status).toBe(0);
    expect(res.stderr.split('\n')[0]).toBe(`${PID_MARKER}${res.pid}`);
    expect(res.stdout.trim()).toBe(String(res.pid));
  });

  it('kills the identity first only when exclusive, and never puts the prelude into the fixed script', () => {
    const plain = wrapCommand(['node'], {
      prelude: { script: 'echo secret-x', stdinBytes: 3, exclusive: false, cwd: '/w' },
    });
    const exclusive = wrapCommand(['node'], {
      prelude: { script: 'echo secret-x', stdinBytes: 3, exclusive: true, cwd: '/w' },
    });
    expect(plain[2]).not.toContain('kill');
    expect(exclusive[2]).toContain('kill -s KILL -- -1');
    // The kill comes before the prelude's pipeline: `kill -1` spares only the shell that sends it.
    expect(exclusive[2]!.indexOf('kill')).toBeLessThan(exclusive[2]!.indexOf('head -c 3'));
    for (const argv of [plain, exclusive]) {
      expect(argv[2]).not.toContain('secret-x');
      expect(argv.slice(4)).toEqual(['echo secret-x', '/w', 'node']);
    }
  });

  it.each([-1, 1.5, Number.NaN])('rejects a prelude stdin of %s bytes', (stdinBytes) => {
    expect(() =>
      wrapCommand(['node'], { prelude: { script: 'true', stdinBytes, exclusive: false, cwd: '/' } }),
    ).toThrow(/invalid prelude stdin/);
  });
});

describe('PreludeReader', () => {
  const read = (chunks: string[], end = false) => {
    const passed: string[] = [];
    const reader = new PreludeReader((c) => passed.push(c.toString('utf8')));
    for (const c of chunks) reader.push(Buffer.from(c));
    if (end) reader.end();
    return { reader, passed };
  };

  it("keeps the prelude's lines up to the marker and passes the command's stderr on", async () => {
    const { reader, passed } = read(['deps: py-1\nca:/b', `ox/ca.pem\n${EXEC_MARKER}\nserver says hi\n`, 'more\n']);
    await expect(reader.done).resolves.toEqual({ ran: true, output: ['deps: py-1', 'ca:/box/ca.pem'] });
    expect(passed.join('')).toBe('server says hi\nmore\n');
  });

  it.each(Array.from({ length: 20 }, (_, i) => i + 1))('finds a marker split at byte %i', async (cut) => {
    const text = `a\n${EXEC_MARKER}\nb\n`;
    const { reader, passed } = read([text.slice(0, cut), text.slice(cut)]);
    await expect(reader.done).resolves.toMatchObject({ ran: true, output: ['a'] });
    expect(passed.join('')).toBe('b\n');
  });

  it('ends without the marker: ran false, with what it printed (an unterminated last line too)', async () => {
    const { reader, passed } = read(['tar: Unexpected EOF\npartial'], true);
    await expect(reader.done).resolves.toEqual({ ran: false, output: ['tar: Unexpected EOF', 'partial'] });
    expect(passed).toEqual([]);
  });

  it('holds at most 64 KiB of output however much the prelude prints, and still finds the marker', async () => {
    const { reader } = read([`${'x'.repeat(1000)}\n`.repeat(200), 'y'.repeat(200_000), `\n${EXEC_MARKER}\n`]);
    const { ran, output } = await reader.done;
    expect(ran).toBe(true);
    expect(output.join('').length).toBeLessThanOrEqual(64 * 1024);
  });

  it('a line that only looks like the marker is output, not the end', async () => {
    const { reader } = read([` ${EXEC_MARKER}\n${EXEC_MARKER}x\n`], true);
    await expect(reader.done).resolves.toEqual({ ran: false, output: [` ${EXEC_MARKER}`, `${EXEC_MARKER}x`] });
  });
});
