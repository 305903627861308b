/**
 * Disk quotas of running servers. The workspace volume lives on the host's disk, and the kernel
 * offers no per-uid quota on it without quota support in the host filesystem, so the quota has two
 * parts:
 *   - a file cap the kernel enforces at once (RLIMIT_FSIZE, set when the process starts): no single
 *     file grows past the quota, the writer gets EFBIG (or SIGXFSZ);
 *   - this watch, for the total: every `intervalMs` it measures each running server's folders (one
 *     exec as its uid, in turn, never two at once) and hands the ones above their quota back to
 *     their server, which stops and clears them with a DISK_QUOTA_EXCEEDED record.
 * Between two measures a server can write at most one interval's worth past its quota.
 */
import { BoxError } from '../errors/box-error.js';
import type { DiskUsage, Identity, Session } from '../runtime/types.js';
import { delay } from '../util/abort.js';

export interface DiskQuota {
  maxBytes: number;
  maxEntries: number;
}

export interface DiskTarget {
  session: Session;
  identity: Identity;
  quota: DiskQuota;
}

/** What the watch needs of a server. */
export interface DiskWatched {
  readonly name: string;
  /** What to measure now, or null when the server has nothing running. */
  diskTarget(): DiskTarget | null;
  /** Its folders hold more than its quota allows (called with the target measured). */
  onDiskOverQuota(usage: DiskUsage, target: DiskTarget): void;
}

export interface DiskWatchOptions {
  intervalMs: number;
  servers: () => Iterable<DiskWatched>;
  /** One measure may take this long (default 20 s). */
  measureTimeoutMs?: number;
  /** A measure that failed (the server is left alone). */
  onError?: (server: string, err: unknown) => void;
}

/** Which limit `usage` is past, or null within the quota. */
export function quotaBreach(usage: DiskUsage, quota: DiskQuota): 'bytes' | 'entries' | null {
  if (usage.bytes > quota.maxBytes) return 'bytes';
  if (usage.entries > quota.maxEntries) return 'entries';
  return null;
}

/** The failure of server `name` whose folders hold more than its quota. */
export function quotaError(name: string, usage: DiskUsage, quota: DiskQuota): BoxError {
  const mib = (bytes: number): number => Math.round(bytes / 1024 / 1024);
  const what =
    quotaBreach(usage, quota) === 'entries'
      ? `holds ${usage.entries} files, above its quota of ${quota.maxEntries} (box.diskFiles)`
      : `uses ${mib(usage.bytes)} MiB of disk, above its quota of ${mib(quota.maxBytes)} MiB (box.diskMb)`;
  return new BoxError(
    'DISK_QUOTA_EXCEEDED',
    'runtime',
    `"${name}" ${what}; stopped, and its folders are cleared before the next start`,
    { details: { usage: { ...usage }, quota: { ...quota } } },
  );
}

export class DiskWatch {
  private readonly controller = new AbortController();
  private loop: Promise<void> | null = null;

  constructor(private readonly opts: DiskWatchOptions) {}

  start(): void {
    if (this.opts.intervalMs <= 0 || this.loop !== null || this.controller.signal.aborted) return;
    this.loop = this.run().catch(() => undefined);
  }

  /** Measures every running server once. */
  async sweep(): Promise<void> {
    const signal = this.controller.signal;
    for (const server of [...this.opts.servers()]) {
      if (signal.aborted) return;
      const target = server.diskTarget();
      if (target === null) continue;
      try {
        const usage = await target.session.diskUsage(target.identity, {
          signal,
          timeoutMs: this.opts.measureTimeoutMs ?? 20_000,
        });
        if (quotaBreach(usage, target.quota) !== null && server.diskTarget()?.identity === target.identity)
          server.onDiskOverQuota(usage, target);
      } catch (err) {
        if (!signal.aborted) this.opts.onError?.(server.name, err);
      }
    }
  }

  async close(): Promise<void> {
    this.controller.abort();
    await this.loop;
  }

  private async run(): Promise<void> {
    const signal = this.controller.signal;
    while (!signal.aborted) {
      await delay(this.opts.intervalMs, signal);
      await this.sweep();
    }
  }
}
