/**
 * An in-memory `Runtime` for fast unit tests of the supervisor: no Docker. Sessions
 * (fake-session.ts) run fake processes (fake-process.ts) whose stdio carries a scripted MCP
 * server (fake-mcp-stdio.ts).
 *
 * What a test controls:
 *  - `script(id, …)`: the behaviour of the processes started for server `id`, fixed or per start
 *    (`(attempt) => script`, attempt 1-based); the default is a healthy server;
 *  - `process(id)` / `processes(id)`: the processes started, to end them (`exit`), write stderr or
 *    close their stdout from the test, wait for a message to reach them (`received('ping')`) and
 *    read their exit record (`ended`);
 *  - `engineDown()` / `engineUp()`: while down, `ping()` and every engine call reject with
 *    ENGINE_UNREACHABLE and running processes end with reason 'engine_lost';
 *  - `killSession()`: a session container dies: `checkAlive` false, its processes end
 *    'container_died'; the next `ensureSession` of the profile makes a replacement on the same
 *    volume (it still holds the dead one's identities: a warm restart);
 *  - `failSessions(error)`: `ensureSession` rejects (IMAGE_MISSING, HARDENING_CHECK_FAILED, …);
 *  - `onExec(hook)` / `failExec(kind, result)`: exec results (staging and installs succeed by
 *    default).
 * What it records: `execs`, `released` identities, `pings`.
 */
import type { BoxError } from '../../src/errors/box-error.js';
import { profileHash, resolveProfile } from '../../src/runtime/profile.js';
import { SLOT_COUNT } from '../../src/runtime/identity.js';
import type {
  EngineInfo,
  EnsureSessionOptions,
  ExecResult,
  Identity,
  ImageInfo,
  ManagedResource,
  ReapReport,
  Runtime,
  Session,
  SessionProfile,
} from '../../src/runtime/types.js';
import type { FakeServerScript } from './fake-mcp-stdio.js';
import type { FakeProcess } from './fake-process.js';
import {
  FakeSession,
  unreachable,
  type FakeExecCall,
  type FakeExecHook,
  type FakeExecKind,
  type FakeSessionHost,
} from './fake-session.js';

export type { FakeExit, FakeServerScript, ToolHandler, ToolReply } from './fake-mcp-stdio.js';
export type { FakeProcess } from './fake-process.js';
export type { FakeExecCall, FakeExecHook, FakeExecKind, FakeSession } from './fake-session.js';

export const FAKE_ENGINE_INFO: EngineInfo = {
  version: '27.0.0-fake',
  apiVersion: '1.46',
  os: 'linux',
  arch: 'x86_64',
  kernel: '6.1.0-fake',
  cgroupVersion: '2',
  securityOptions: ['name=seccomp,profile=builtin', 'name=cgroupns'],
};

export interface FakeRuntimeOptions {
  /** How long a stop waits after stdin EOF before SIGTERM (a script with exitOnStdinEnd: false). Default 20 ms. */
  eofGraceMs?: number;
}

type ScriptSource = FakeServerScript | ((attempt: number) => FakeServerScript);

export class FakeRuntime implements Runtime {
  readonly ownerId = 'fake-owner';
  /** Every exec run, oldest first. */
  readonly execs: FakeExecCall[] = [];
  /** Every identity released (a server removed, or its folders cleared), oldest first. */
  readonly released: Identity[] = [];
  /** Calls of `ping()`. */
  pings = 0;
  private readonly live = new Map<string, FakeSession>();
  private readonly all: FakeSession[] = [];
  private readonly volumes = new Map<string, Set<Identity>>();
  private readonly scripts = new Map<string, ScriptSource>();
  private readonly started = new Map<string, FakeProcess[]>();
  private readonly slots = new Set<number>();
  private execHook: FakeExecHook | null = null;
  private sessionFailure: { error: BoxError; times: number } | null = null;
  private reachable = true;
  private pid = 100;
  private closed = false;

  constructor(private readonly opts: FakeRuntimeOptions = {}) {}

  // ── controls ─────────────────────────────────────────────────────────────────────────────

  /** The behaviour of processes started for server `id` from now on (per start with a function). */
  script(id: string, script: ScriptSource): this {
    this.scripts.set(id, script);
    return this;
  }

  /** The processes started for `id`, oldest first. */
  processes(id: string): FakeProcess[] {
    return [...(this.started.get(id) ?? [])];
  }

  /** The latest process started for `id`. */
  process(id: string): FakeProcess {
    const list = this.started.get(id) ?? [];
    const last = list[list.length - 1];
    if (last === undefined) throw new Error(`fake runtime: no process was started for ${JSON.stringify(id)}`);
    return last;
  }

  /** Every session made, the dead ones included, oldest first. */
  allSessions(): FakeSession[] {
    return [...this.all];
  }

  get engineReachable(): boolean {
    return this.reachable;
  }

  /** The engine goes away: running processes end 'engine_lost'; every engine call rejects until engineUp(). */
  engineDown(): void {
    if (!this.reachable) return;
    this.reachable = false;
    for (const s of this.live.values()) s.endProcesses('engine_lost');
  }

  engineUp(): void {
    this.reachable = true;
  }

  /** A session container dies (the only one when `session` is omitted). */
  killSession(session?: Session | string, why = 'killed'): void {
    const target =
      session === undefined ? this.only() : this.live.get(typeof session === 'string' ? session : session.info.name);
    if (target === undefined)
      throw new Error(
        `fake runtime: no live session ${JSON.stringify(typeof session === 'string' ? session : session?.info.name)}`,
      );
    this.live.delete(target.info.name);
    target.die(why);
  }

  /** The next `times` calls of ensureSession reject with `error`. */
  failSessions(error: BoxError, times = Number.POSITIVE_INFINITY): void {
    this.sessionFailure = { error, times };
  }

  /** Decides exec results (null: the defaults again). A hook may throw, or return a promise to take time. */
  onExec(hook: FakeExecHook | null): void {
    this.execHook = hook;
  }

  /** Execs of `kind` end with `result` (e.g. `{ exitCode: 1, stderr: '…' }`), the next `times` of them. */
  failExec(kind: FakeExecKind, result: Partial<ExecResult>, times = Number.POSITIVE_INFINITY): void {
    let left = times;
    this.onExec((call) => {
      if (call.kind !== kind || left <= 0) return undefined;
      left--;
      return result;
    });
  }

  // ── Runtime ──────────────────────────────────────────────────────────────────────────────

  ping(): Promise<EngineInfo> {
    this.pings++;
    if (!this.reachable) return Promise.reject(unreachable());
    return Promise.resolve({ ...FAKE_ENGINE_INFO });
  }

  async ensureSession(partial: Partial<SessionProfile> = {}, opts: EnsureSessionOptions = {}): Promise<Session> {
    if (this.closed) throw new Error('fake runtime: closed');
    if (!this.reachable) throw unreachable();
    const failure = this.sessionFailure;
    if (failure !== null && failure.times > 0) {
      failure.times--;
      throw failure.error;
    }
    const profile = resolveProfile(partial);
    const hash = profileHash(profile);
    for (const s of this.live.values()) if (s.info.profileHash === hash && s.alive) return s;
    const generation = this.all.filter((s) => s.info.profileHash === hash).length;
    const session = new FakeSession(
      this.sessionHost(),
      `mcp-box-fake-${hash}-${generation}`,
      profile,
      hash,
      `mcp-box-fake-${hash}-ws`,
      opts.persistent === true,
    );
    this.live.set(session.info.name, session);
    this.all.push(session);
    return session;
  }

  sessions(): Session[] {
    return [...this.live.values()];
  }

  listManaged(): Promise<ManagedResource[]> {
    return Promise.resolve([]);
  }

  reap(): Promise<ReapReport> {
    return Promise.resolve({ removedContainers: [], removedVolumes: [], kept: [] });
  }

  imageInfo(ref: string): Promise<ImageInfo | null> {
    return Promise.resolve({ id: `sha256:fake-${ref}`, labels: {}, created: new Date(0).toISOString() });
  }

  buildImage(): Promise<ImageInfo> {
    return Promise.reject(new Error('fake runtime: buildImage is not supported'));
  }

  async close(opts: { removeSessions?: boolean } = {}): Promise<void> {
    this.closed = true;
    if (opts.removeSessions === false) return;
    for (const s of this.live.values()) await s.remove();
    this.live.clear();
  }

  // ── internals ────────────────────────────────────────────────────────────────────────────

  private only(): FakeSession | undefined {
    if (this.live.size > 1) throw new Error('fake runtime: several live sessions; name the one to kill');
    return [...this.live.values()][0];
  }

  private sessionHost(): FakeSessionHost {
    return {
      engineReachable: () => this.reachable,
      nextPid: () => ++this.pid,
      takeSlot: () => {
        for (let slot = 0; slot < SLOT_COUNT; slot++) {
          if (!this.slots.has(slot)) {
            this.slots.add(slot);
            return slot;
          }
        }
        throw new Error('fake runtime: all slots in use');
      },
      freeSlot: (slot) => void this.slots.delete(slot),
      nextScript: (id) => {
        const attempt = (this.started.get(id)?.length ?? 0) + 1;
        const source = this.scripts.get(id) ?? {};
        return { script: typeof source === 'function' ? source(attempt) : source, attempt };
      },
      eofGraceMs: this.opts.eofGraceMs ?? 20,
      volumeIdentities: (volume) => {
        let set = this.volumes.get(volume);
        if (set === undefined) this.volumes.set(volume, (set = new Set()));
        return set;
      },
      exec: async (call) => {
        this.execs.push(call);
        return this.execHook === null ? undefined : await this.execHook(call);
      },
      processStarted: (proc) => {
        const list = this.started.get(proc.id) ?? [];
        list.push(proc);
        this.started.set(proc.id, list);
      },
      identityReleased: (identity) => void this.released.push(identity),
    };
  }
}
