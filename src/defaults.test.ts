/**
 * The README states the defaults, the deny-list, the phases and the exit codes; the code is their
 * one source. This holds the README to the code, so a changed default cannot leave it behind.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EXIT } from './cli/exit-codes.js';
import { PHASES } from './errors/box-error.js';
import { EXACT_DENIED, SYSTEM_DIRS } from './workspace/host-policy.js';
import * as D from './defaults.js';

const README = readFileSync(join(process.cwd(), 'README.md'), 'utf8');

/** The default column of the Configuration table's row for `key` (its first cell starts with it). */
function defaultCell(key: string): string {
  const row = README.split('\n').find((line) => line.startsWith(`| \`${key}\``));
  if (row === undefined) throw new Error(`README has no Configuration row for ${key}`);
  return row.split('|')[2]?.trim() ?? '';
}
const numbers = (cell: string): number[] => [...cell.matchAll(/\d[\d,]*/g)].map((m) => Number(m[0].replace(/,/g, '')));

describe('README Configuration: the defaults are those of src/defaults.ts', () => {
  it.each([
    {
      key: 'cpus',
      expected: [
        D.DEFAULT_PROFILE.cpus,
        D.DEFAULT_PROFILE.memoryMb,
        D.DEFAULT_PROFILE.pidsLimit,
        D.DEFAULT_PROFILE.tmpfsMb,
      ],
    },
    {
      key: 'installTimeoutSec',
      expected: [
        D.DEFAULT_INSTALL_TIMEOUT_MS / 1000,
        D.DEFAULT_STARTUP_TIMEOUT_MS / 1000,
        D.DEFAULT_TOOL_TIMEOUT_MS / 1000,
      ],
    },
    { key: 'pingIntervalSec', expected: [D.DEFAULT_PING_INTERVAL_MS / 1000] },
    { key: 'recycleAfterTimeouts', expected: [D.DEFAULT_RECYCLE_AFTER_TIMEOUTS] },
    {
      key: 'stageLimits',
      expected: [
        D.DEFAULT_STAGE_LIMITS.maxBytes / 1024 / 1024,
        D.DEFAULT_STAGE_LIMITS.maxFiles,
        D.DEFAULT_STAGE_LIMITS.maxDepth,
      ],
    },
    { key: 'processLimit', expected: [D.DEFAULT_NPROC_PER_IDENTITY] },
    { key: 'diskMb', expected: [D.DEFAULT_DISK_MB, D.DEFAULT_DISK_FILES] },
    { key: 'diskCheckSec', expected: [D.DEFAULT_DISK_CHECK_SEC] },
  ])('$key', ({ key, expected }) => {
    expect(numbers(defaultCell(key))).toEqual(expected);
  });

  it('image, network, readOnlyRootfs', () => {
    expect(defaultCell('image')).toBe(`\`${D.DEFAULT_PROFILE.image}\``);
    expect(defaultCell('network')).toBe(`\`${D.DEFAULT_PROFILE.network}\``);
    expect(defaultCell('readOnlyRootfs')).toBe(`\`${String(D.DEFAULT_PROFILE.readOnlyRootfs)}\``);
  });

  it('the restart policy, the server section and the shutdown grace', () => {
    const r = D.DEFAULT_RESTART;
    expect(README).toContain(`\`maxRestarts\` (${r.maxRestarts}) failures within \`windowSec\` (${r.windowMs / 1000})`);
    expect(README).toContain(
      `backoff \`backoffInitialMs\` (${r.backoffInitialMs}) doubling up to \`backoffMaxMs\` (${r.backoffMaxMs})`,
    );
    expect(README).toContain(`\`healthyAfterSec\` (${r.healthyAfterMs / 1000})`);
    expect(README).toContain(`\`host\` (\`${D.DEFAULT_HOST}\`), \`port\` (${D.DEFAULT_PORT} for \`serve\``);
    const headersTimeout = D.DEFAULT_HEADERS_TIMEOUT_MS.toLocaleString('en-US');
    expect(README).toContain(
      `(time a client has to send its request line and headers, 100–300,000; ${headersTimeout})`,
    );
    expect(README).toContain(`${D.SHUTDOWN_GRACE_MS / 1000} s grace`);
  });
});

describe('README: lists whose source is the code', () => {
  it('the staging deny-list names exactly host-policy.ts SYSTEM_DIRS, and bare folders from EXACT_DENIED', () => {
    const system = /a system folder or anything below one\n\(([^)]*)\)/.exec(README)?.[1];
    expect(system?.split(', ').map((d) => d.replace(/`/g, ''))).toEqual([...SYSTEM_DIRS]);
    const bare = /a bare top-level\nfolder \(([^)]*)\)/.exec(README)?.[1] ?? '';
    for (const dir of [...bare.matchAll(/`([^`]+)`/g)].map((m) => m[1])) expect(EXACT_DENIED).toContain(dir);
  });

  it('the Errors section lists exactly the phases of box-error.ts PHASES, in order', () => {
    const text = /Phases \(`PHASES`[\s\S]*?what a client\s+sent or asked for\)/.exec(README)?.[0] ?? '';
    const listed = [...text.slice(text.indexOf('a server')).matchAll(/`([a-z_]+)`/g)].map((m) => m[1]);
    expect(listed).toEqual([...PHASES]);
  });

  it('the CLI section states the exit codes of src/cli/exit-codes.ts', () => {
    const line = /Exit codes: ([\s\S]*?)\(a client verb/.exec(README)?.[1]?.replace(/\s+/g, ' ') ?? '';
    expect(numbers(line)).toEqual(Object.values(EXIT));
  });
});
