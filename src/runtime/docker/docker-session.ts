/** A shared, hardened container session and everything running in it. */
import type Dockerode from 'dockerode';
import { BoxError } from '../../errors/box-error.js';
import { delay } from '../../util/abort.js';
import { once } from '../../util/once.js';
import {
  IDENTITY_LAYOUT,
  IDENTITY_PARENT,
  IDENTITY_SUBDIRS,
  SESSION_UID,
  SLOT_UID_BASE,
  identityEnv,
  identityForSlot,
} from '../identity.js';

const INITIAL_GENERATION = `${IDENTITY_LAYOUT.generationPrefix}${IDENTITY_LAYOUT.initialGeneration}`;
import type { SlotAllocator } from '../slot-allocator.js';
import type {
  ContainerState,
  DiskUsage,
  ExecResult,
  ExecSpec,
  Identity,
  ManagedProcess,
  ManagedProcessSpec,
  Session,
  SessionEvent,
  SessionInfo,
} from '../types.js';
import { toBoxError } from './engine-errors.js';
import type { ExecContext, KillTarget } from './exec-context.js';
import { DockerManagedProcess, type ProcessHost } from './docker-managed-process.js';
import { runOneShotExec } from './one-shot-exec.js';
import { signalled } from './signalled.js';

const SESSION_USER = `${SESSION_UID}:${SESSION_UID}`;
/** After a `kill` event: how long to watch for the container to stop (a `die` event may be lost). */
const KILL_CONFIRM_MS = 3000;
const OOM_COUNTER_SCRIPT =
  'cat /sys/fs/cgroup/memory.events 2>/dev/null | sed -n "s/^oom_kill //p"; ' +
  'cat /sys/fs/cgroup/memory/memory.oom_control 2>/dev/null | sed -n "s/^oom_kill //p"';

export interface DockerSessionDeps {
  docker: Dockerode;
  slots: SlotAllocator;
  limits: { nproc: number; nofile: number };
  onRemoved: (session: DockerSession) => void;
}

export class DockerSession implements Session {
  readonly info: SessionInfo;
  private readonly container: Dockerode.Container;
  private readonly deps: DockerSessionDeps;
  private readonly running = new Set<DockerManagedProcess>();
  private readonly identities = new Map<number, Identity>();
  private readonly listeners = new Set<(event: SessionEvent) => void>();
  private readonly oomEventTimes: number[] = [];
  private oomKills: number | null = null;
  private dead = false;
  /** Why the session is dead (the first sign of it). */
  private deathReason: string | null = null;
  /** The volume now belongs to a replacement session: remove() leaves it. */
  private volumeHandedOver = false;

  constructor(info: SessionInfo, deps: DockerSessionDeps) {
    this.info = info;
    this.deps = deps;
    this.container = deps.docker.getContainer(info.containerId);
  }

  get alive(): boolean {
    return !this.dead;
  }

  /** Why the session died (null while it lives). */
  get diedBecause(): string | null {
    return this.deathReason;
  }

  holds(identity: Identity): boolean {
    return this.identities.get(identity.slot) === identity;
  }

  /**
   * Asks the engine whether the container still runs; marks the session dead when it does not (or
   * is gone). An engine that does not answer throws ENGINE_UNREACHABLE and decides nothing.
   */
  async checkAlive(opts: { signal?: AbortSignal; settleMs?: number } = {}): Promise<boolean> {
    const deadline = Date.now() + (opts.settleMs ?? 0);
    for (;;) {
      if (this.dead) return false;
      try {
        const state = await this.inspect(opts.signal === undefined ? {} : { signal: opts.signal });
        if (!state.running || state.status === 'paused')
          this.markDead(`the engine reports the container ${state.status}`);
      } catch (err) {
        if (!(err instanceof BoxError) || err.code !== 'NOT_FOUND') throw err;
        this.markDead('the container was removed');
      }
      if (this.dead || Date.now() >= deadline) return !this.dead;
      await delay(100, opts.signal);
    }
  }

  /**
   * A replacement session mounts this dead session's volume: the identities (their folders,
   * installed dependencies and caches live in it) move over, and remove() no longer touches it.
   */
  handOverTo(next: DockerSession): void {
    this.volumeHandedOver = true;
    for (const [slot, identity] of this.identities) next.identities.set(slot, identity);
    this.identities.clear();
  }

  async createIdentity(opts: { signal?: AbortSignal; provision?: boolean } = {}): Promise<Identity> {
    this.assertAlive('process_start');
    const slot = this.deps.slots.acquire();
    if (opts.provision === false) {
      const identity = identityForSlot(slot);
      this.identities.set(slot, identity);
      return identity;
    }
    try {
      for (let attempt = 0; attempt < 3; attempt++) {
        const identity = identityForSlot(slot);
        // Leftovers of an earlier holder of this uid are killed first; `mkdir` (not -p) fails if
        // the random folder name somehow exists, and then a new name is drawn.
        const result = await this.housekeeping(
          identity,
          [
            '/bin/sh',
            '-c',
            // The layout of runtime/identity.ts: its folders, and the first (empty) staged generation.
            'kill -s KILL -- -1 2>/dev/null; umask 077; mkdir "$1" && ' +
              `mkdir ${[...IDENTITY_SUBDIRS, INITIAL_GENERATION].map((d) => `"$1/${d}"`).join(' ')} && ` +
              `ln -s ${INITIAL_GENERATION} "$1/${IDENTITY_LAYOUT.workspace}" && chmod 0700 "$1"`,
            'mcp-box',
            identity.root,
          ],
          opts.signal,
        );
        if (result.exitCode === 0) {
          this.identities.set(slot, identity);
          return identity;
        }
        if (attempt === 2) {
          throw new BoxError(
            'PROCESS_START_FAILED',
            'process_start',
            `Failed to create the private folders of uid ${identity.uid}: ${result.stderr.trim()}`,
            {
              details: { exitCode: result.exitCode },
            },
          );
        }
      }
      throw new BoxError('PROCESS_START_FAILED', 'process_start', 'unreachable');
    } catch (err) {
      this.deps.slots.release(slot);
      throw err;
    }
  }

  async releaseIdentity(identity: Identity, opts: { signal?: AbortSignal } = {}): Promise<void> {
    for (const proc of this.running) {
      if (proc.identity.uid === identity.uid) proc.notifyEnded('stopped');
    }
    try {
      if (!this.dead) {
        await this.housekeeping(
          identity,
          [
            '/bin/sh',
            '-c',
            'kill -s KILL -- -1 2>/dev/null; chmod -R u+rwx "$1" 2>/dev/null; rm -rf "$1"; ' +
              'find /tmp /dev/shm -xdev -mindepth 1 -maxdepth 1 -user "$2" -exec rm -rf {} + 2>/dev/null; exit 0',
            'mcp-box',
            identity.root,
            String(identity.uid),
          ],
          opts.signal,
        );
      }
    } finally {
      this.identities.delete(identity.slot);
      this.deps.slots.release(identity.slot);
    }
  }

  async exec(spec: ExecSpec): Promise<ExecResult> {
    this.assertAlive('runtime');
    return runOneShotExec(this.contextFor(spec.identity, 'runtime'), {
      ...spec,
      cwd: spec.cwd ?? spec.identity?.workspace ?? '/workspace',
    });
  }

  async startProcess(spec: ManagedProcessSpec): Promise<ManagedProcess> {
    this.assertAlive('process_start');
    if (this.oomKills === null) await this.readOomKills().catch(() => null);
    const ctx = this.contextFor(spec.identity, 'process_start');
    if (spec.processLimit !== undefined) ctx.limits = { ...ctx.limits, nproc: spec.processLimit };
    if (spec.fileSizeLimitBytes !== undefined) ctx.limits = { ...ctx.limits, fsize: spec.fileSizeLimitBytes };
    const proc = await DockerManagedProcess.start(ctx, this.processHost(), {
      ...spec,
      cwd: spec.cwd ?? spec.identity.workspace,
    });
    if (proc.running) this.running.add(proc);
    return proc;
  }

  processes(): ManagedProcess[] {
    return [...this.running];
  }

  async inspect(opts: { signal?: AbortSignal } = {}): Promise<ContainerState> {
    try {
      const info = await signalled<Dockerode.ContainerInspectInfo>(
        this.container,
        this.container.inspect,
      )({ abortSignal: opts.signal });
      const state = info.State;
      return {
        running: state.Running,
        status: state.Status,
        exitCode: typeof state.ExitCode === 'number' ? state.ExitCode : null,
        oomKilled: state.OOMKilled,
        startedAt: state.StartedAt || null,
        finishedAt: state.FinishedAt && !state.FinishedAt.startsWith('0001') ? state.FinishedAt : null,
        error: state.Error || null,
      };
    } catch (err) {
      throw toBoxError(err, 'runtime', `inspect session ${this.info.name}`);
    }
  }

  onEvent(listener: (event: SessionEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Called by the runtime's event router for this container's engine events. */
  handleEngineEvent(event: SessionEvent): void {
    if (event.action === 'exec_die') {
      for (const proc of this.running) if (proc.execId === event.execId) proc.notifyEnded();
      return;
    }
    if (event.action === 'oom') this.oomEventTimes.push(Date.parse(event.at));
    if (event.action === 'die' || event.action === 'destroy') this.markDead(`the engine reported "${event.action}"`);
    // A kill is followed by a die only if the signal was fatal; that die can be lost (the events
    // stream dropped): watch the container itself for a moment.
    if (event.action === 'kill') void this.confirmKill();
    for (const listener of this.listeners) listener(event);
  }

  readonly remove = once(async (opts: { signal?: AbortSignal } = {}): Promise<void> => {
    this.markDead('removed');
    try {
      await this.container.remove({ force: true, v: true, abortSignal: opts.signal } as never);
    } catch (err) {
      const boxError = toBoxError(err, 'shutdown', `remove session ${this.info.name}`);
      if (boxError.code !== 'NOT_FOUND') throw boxError;
    }
    if (!this.volumeHandedOver) {
      try {
        await this.deps.docker.getVolume(this.info.volume).remove({ abortSignal: opts.signal } as never);
      } catch (err) {
        const boxError = toBoxError(err, 'shutdown', `remove volume ${this.info.volume}`);
        if (boxError.code !== 'NOT_FOUND') throw boxError;
      }
    }
    for (const identity of this.identities.values()) this.deps.slots.release(identity.slot);
    this.identities.clear();
    this.deps.onRemoved(this);
  });

  /**
   * One pass of `find` as the identity's uid (root without capabilities cannot enter its 0700
   * folders), summing allocated KiB and counting entries. Bounded by `timeoutMs`: a tenant with so
   * many files that the count cannot finish is refused as over quota by the caller.
   */
  async diskUsage(identity: Identity, opts: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<DiskUsage> {
    this.assertAlive('runtime');
    const result = await this.housekeeping(
      identity,
      [
        '/bin/sh',
        '-c',
        'find "$1" -xdev -printf \'%k\\n\' 2>/dev/null | awk \'{ k += $1; n++ } END { printf "%d %d\\n", k, n }\'',
        'mcp-box',
        identity.root,
      ],
      opts.signal,
      opts.timeoutMs,
    );
    const m = /^(\d+) (\d+)$/.exec(result.stdout.trim());
    if (result.exitCode !== 0 || m === null) {
      throw new BoxError(
        'ENGINE_ERROR',
        'runtime',
        `Cannot measure the disk use of uid ${identity.uid}: ` +
          `${result.timedOut ? 'timed out' : `exit ${result.exitCode}`} ${result.stderr.trim().slice(0, 200)}`,
      );
    }
    return { bytes: Number(m[1]) * 1024, entries: Number(m[2]) };
  }

  /**
   * For an adopted session: kills every process of every identity uid and deletes the identity
   * folders a previous owner left. Root (without capabilities) can list the 1733 parent folder it
   * owns but not enter the 0700 folders, so each uid removes its own. Folders of identities this
   * session holds (moved over from the dead session whose volume it re-attached) are kept.
   */
  async clearLeftovers(): Promise<void> {
    const kept = new Set([...this.identities.values()].map((i) => i.root));
    const root = { ...this.contextFor(undefined, 'session_create'), user: '0:0' };
    const listing = await runOneShotExec(root, {
      cmd: ['/bin/sh', '-c', `ps -eo uid= | sort -un; echo --; stat -c '%u %n' ${IDENTITY_PARENT}/* 2>/dev/null; true`],
      timeoutMs: 15_000,
      cwd: '/',
    });
    const [procs = '', dirs = ''] = listing.stdout.split('--\n');
    const uids = new Set(
      procs
        .split('\n')
        .map((l) => Number(l.trim()))
        .filter((u) => u >= SLOT_UID_BASE),
    );
    const folders = new Map<number, string[]>();
    for (const line of dirs.split('\n')) {
      const m = /^(\d+) (\/\S+)$/.exec(line.trim());
      if (m === null || Number(m[1]) < SLOT_UID_BASE || kept.has(m[2] as string)) continue;
      const uid = Number(m[1]);
      uids.add(uid);
      folders.set(uid, [...(folders.get(uid) ?? []), m[2] as string]);
    }
    for (const uid of uids) {
      await runOneShotExec(
        { ...root, user: `${uid}:${uid}` },
        {
          cmd: [
            '/bin/sh',
            '-c',
            'kill -s KILL -- -1 2>/dev/null; ' +
              'for d in "$@"; do chmod -R u+rwx "$d" 2>/dev/null; rm -rf "$d"; done; exit 0',
            'mcp-box',
            ...(folders.get(uid) ?? []),
          ],
          timeoutMs: 30_000,
          cwd: '/',
        },
      );
    }
  }

  /** Reads the container's OOM-kill counter from its memory cgroup (v1 or v2). */
  async readOomKills(): Promise<number | null> {
    const result = await runOneShotExec(this.contextFor(undefined, 'runtime'), {
      cmd: ['/bin/sh', '-c', OOM_COUNTER_SCRIPT],
      timeoutMs: 5000,
    });
    const value = Number.parseInt(result.stdout.trim().split('\n')[0] ?? '', 10);
    this.oomKills = Number.isFinite(value) ? value : null;
    return this.oomKills;
  }

  markDead(reason: string): void {
    if (this.dead) return;
    this.dead = true;
    this.deathReason = reason;
    for (const proc of this.running) proc.notifyEnded('container_died');
  }

  private async confirmKill(): Promise<void> {
    const deadline = Date.now() + KILL_CONFIRM_MS;
    while (!this.dead && Date.now() < deadline) {
      if (!(await this.checkAlive().catch(() => true))) return;
      await delay(250);
    }
  }

  private assertAlive(phase: 'runtime' | 'process_start'): void {
    if (this.dead)
      throw new BoxError(
        'SESSION_DEAD',
        phase,
        `Session ${this.info.name} is gone: ${this.deathReason ?? 'its container died or was removed'}`,
      );
  }

  private housekeeping(
    identity: Identity,
    cmd: string[],
    signal?: AbortSignal,
    timeoutMs = 30_000,
  ): Promise<ExecResult> {
    const ctx = this.contextFor(undefined, 'process_start');
    return runOneShotExec(
      { ...ctx, user: `${identity.uid}:${identity.gid}` },
      { cmd, timeoutMs, cwd: '/', ...(signal === undefined ? {} : { signal }) },
    );
  }

  private contextFor(identity: Identity | undefined, phase: ExecContext['phase']): ExecContext {
    return {
      container: this.container,
      sessionName: this.info.name,
      user: identity === undefined ? SESSION_USER : `${identity.uid}:${identity.gid}`,
      env: identity === undefined ? {} : identityEnv(identity),
      ...(identity === undefined ? {} : { limits: this.deps.limits }),
      phase,
      kill: (user, target, sig) => this.deliverSignal(user, target, sig),
      onContainerGone: (reason) => this.markDead(`the engine refused an exec: ${reason}`),
    };
  }

  private async deliverSignal(user: string, target: KillTarget, sig: 'TERM' | 'KILL' | 'INT' | 'HUP'): Promise<void> {
    if (this.dead) return;
    const which = target === 'all' ? '-- -1' : `-- -${target.group}`;
    await runOneShotExec(
      { ...this.contextFor(undefined, 'runtime'), user },
      { cmd: ['/bin/sh', '-c', `kill -s ${sig} ${which} 2>/dev/null; exit 0`], timeoutMs: 10_000, cwd: '/' },
    );
  }

  private processHost(): ProcessHost {
    return {
      isContainerDead: async (settleMs = 0) => !(await this.checkAlive({ settleMs })),
      readOomKills: () => this.readOomKills(),
      lastKnownOomKills: () => this.oomKills,
      oomEventSince: (sinceMs) => this.oomEventTimes.some((t) => t >= sinceMs),
      forget: (proc) => this.running.delete(proc),
    };
  }
}
