/**
 * An in-memory `Session` for the fake runtime (fake-runtime.ts): identities, one-shot execs and
 * fake processes, with no container behind them.
 *
 * Execs are classified by what they run (`FakeExecKind`): the tool probe gets an image's tool
 * versions, the staging script gets the `deps:` line it prints, anything else exits 0. Each exec
 * drains its stdin (the staging tar stream) like a real extraction. The runtime's exec hook can
 * replace any result or throw instead.
 *
 * A dead session refuses everything with SESSION_DEAD (as an engine refuses an exec in a
 * container that is not running); while the engine is down everything is ENGINE_UNREACHABLE.
 * `checkAlive` answers at once: there is no container whose death could still be on its way.
 */
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { BoxError } from '../../src/errors/box-error.js';
import { identityForSlot } from '../../src/runtime/identity.js';
import {
  PRELUDE_STOP_EXIT,
  type ContainerState,
  type DiskUsage,
  type ExecResult,
  type ExecSpec,
  type Identity,
  type ManagedProcess,
  type ManagedProcessSpec,
  type PreludeOutcome,
  type ProcessPrelude,
  type Session,
  type SessionEvent,
  type SessionInfo,
  type SessionProfile,
} from '../../src/runtime/types.js';
import type { FakeServerScript } from './fake-mcp-stdio.js';
import { FakeProcess } from './fake-process.js';

/** What an exec runs, as far as the fake can tell from its command line. */
export type FakeExecKind = 'probe' | 'stage' | 'install' | 'other';

export interface FakeExecCall {
  kind: FakeExecKind;
  session: string;
  spec: ExecSpec;
}

/** What an exec hook returns: fields of the result to use (undefined: the default result). */
export type FakeExecHook = (
  call: FakeExecCall,
) => Partial<ExecResult> | undefined | Promise<Partial<ExecResult> | undefined>;

/** What a session needs of its runtime. */
export interface FakeSessionHost {
  engineReachable(): boolean;
  nextPid(): number;
  takeSlot(): number;
  freeSlot(slot: number): void;
  /** The script for the next start of process `id`, and which start it is (1-based). */
  nextScript(id: string): { script: FakeServerScript; attempt: number };
  eofGraceMs: number;
  /** Identities on each workspace volume (a replacement session re-attaches them). */
  volumeIdentities(volume: string): Set<Identity>;
  exec(call: FakeExecCall): Promise<Partial<ExecResult> | undefined>;
  processStarted(proc: FakeProcess): void;
  identityReleased(identity: Identity): void;
}

export const FAKE_TOOL_VERSIONS = 'python=3.11.2\npip=23.0.1\nnode=20.19.0\nnpm=10.8.2\n';

export function execKind(spec: ExecSpec): FakeExecKind {
  const script = spec.cmd[2] ?? '';
  if (spec.cmd[3] === 'mcp-box-stage') return 'stage';
  if (spec.identity === undefined && script.includes('python=%d.%d.%d')) return 'probe';
  if (spec.identity !== undefined) return 'install';
  return 'other';
}

export class FakeSession implements Session {
  readonly info: SessionInfo;
  private dead: string | null = null;
  private readonly procs = new Set<FakeProcess>();
  private readonly listeners = new Set<(event: SessionEvent) => void>();

  constructor(
    private readonly host: FakeSessionHost,
    name: string,
    profile: SessionProfile,
    profileHash: string,
    volume: string,
    persistent: boolean,
  ) {
    this.info = {
      name,
      containerId: randomBytes(32).toString('hex'),
      profileHash,
      profile,
      volume,
      state: 'running',
      createdAt: new Date().toISOString(),
      persistent,
      imageId: `sha256:fake-${profile.image}`,
    };
  }

  get alive(): boolean {
    return this.dead === null;
  }

  get diedBecause(): string | null {
    return this.dead;
  }

  /** The container dies: its processes end `reason` ('container_died' by default), a `die` event. */
  die(why = 'killed', reason: 'container_died' | 'engine_lost' = 'container_died'): void {
    if (this.dead !== null) return;
    this.dead = why;
    this.info.state = 'dead';
    this.endProcesses(reason);
    this.emit({
      session: this.info.name,
      containerId: this.info.containerId,
      action: 'die',
      exitCode: 137,
      at: new Date().toISOString(),
    });
  }

  /** Ends every process of this session with `reason` (the engine went away, the container died). */
  endProcesses(reason: 'container_died' | 'engine_lost' | 'stopped'): void {
    for (const proc of [...this.procs]) proc.exit({ code: null, reason });
  }

  async checkAlive(): Promise<boolean> {
    if (!this.host.engineReachable()) throw unreachable();
    return this.alive;
  }

  async createIdentity(): Promise<Identity> {
    this.usable('create an identity');
    const identity = identityForSlot(this.host.takeSlot());
    this.host.volumeIdentities(this.info.volume).add(identity);
    return identity;
  }

  async releaseIdentity(identity: Identity): Promise<void> {
    this.usable('release an identity');
    for (const proc of [...this.procs])
      if (proc.identity.uid === identity.uid) proc.exit({ signal: 'SIGKILL', reason: 'stopped' });
    this.host.volumeIdentities(this.info.volume).delete(identity);
    this.host.freeSlot(identity.slot);
    this.host.identityReleased(identity);
  }

  holds(identity: Identity): boolean {
    return this.host.volumeIdentities(this.info.volume).has(identity);
  }

  async diskUsage(): Promise<DiskUsage> {
    this.usable('measure the disk use');
    return { bytes: 0, entries: 0 };
  }

  async exec(spec: ExecSpec): Promise<ExecResult> {
    this.usable('run an exec');
    const started = Date.now();
    if (spec.stdin !== undefined && typeof spec.stdin !== 'string' && !Buffer.isBuffer(spec.stdin))
      await drain(spec.stdin);
    const kind = execKind(spec);
    const override = await this.host.exec({ kind, session: this.info.name, spec });
    this.usable('finish an exec');
    const stdout = kind === 'probe' ? FAKE_TOOL_VERSIONS : kind === 'stage' ? 'deps:\n' : '';
    return {
      exitCode: 0,
      timedOut: false,
      cancelled: false,
      stdout,
      stderr: '',
      stdoutTruncated: false,
      stderrTruncated: false,
      pid: this.host.nextPid(),
      durationMs: Date.now() - started,
      ...override,
    };
  }

  async startProcess(spec: ManagedProcessSpec): Promise<ManagedProcess> {
    this.usable('start a process');
    const prelude = spec.prelude === undefined ? undefined : await this.runPrelude(spec, spec.prelude);
    if (prelude !== undefined && prelude.status !== 'ran') {
      // The command never ran: an exec that ended with the prelude (no script of the server is used up).
      const ended = new FakeProcess(spec, {
        session: this.info.name,
        pid: this.host.nextPid(),
        attempt: 0,
        script: { exit: { code: prelude.exitCode ?? 1, afterMs: 0 } },
        eofGraceMs: this.host.eofGraceMs,
        onEnded: () => undefined,
      });
      ended.prelude = prelude;
      return ended;
    }
    const { script, attempt } = this.host.nextScript(spec.id);
    const proc = new FakeProcess(spec, {
      session: this.info.name,
      pid: this.host.nextPid(),
      attempt,
      script,
      eofGraceMs: this.host.eofGraceMs,
      onEnded: (p) => this.procs.delete(p),
    });
    if (prelude !== undefined) proc.prelude = prelude;
    // A script may end it at once (exit afterMs 0): then it is started and already gone.
    if (proc.running) this.procs.add(proc);
    this.host.processStarted(proc);
    return proc;
  }

  /**
   * A stage run as a prelude goes through the exec hook as a `stage` exec (so tests fail or count it the same way).
   * Its outcome: failed when the exec failed; stopped when the stage needs a dependency set (its 4th argument, on
   * the prelude's first line) that the deps line does not list; ran otherwise.
   */
  private async runPrelude(spec: ManagedProcessSpec, prelude: ProcessPrelude): Promise<PreludeOutcome> {
    const result = await this.exec({
      identity: spec.identity,
      cmd: ['/bin/sh', '-c', prelude.script, 'mcp-box-stage'],
      stdin: prelude.stdin,
      cwd: '/',
    });
    const output = `${result.stdout}${result.stderr}`.split('\n').filter((l) => l !== '');
    const base = { output, durationMs: result.durationMs };
    if (result.exitCode !== 0) return { ...base, status: 'failed', exitCode: result.exitCode };
    const args = [...(prelude.script.split('\n')[0] ?? '').matchAll(/'([^']*)'/g)].map((m) => m[1] ?? '');
    const present = (output.findLast((l) => l.startsWith('deps:')) ?? 'deps:').slice(5).trim().split(/\s+/);
    const need = args[3] === undefined || args[3] === '-' ? [] : args[3].split(' ');
    if (need.some((d) => !present.includes(d))) return { ...base, status: 'stopped', exitCode: PRELUDE_STOP_EXIT };
    return { ...base, status: 'ran', exitCode: null };
  }

  processes(): ManagedProcess[] {
    return [...this.procs];
  }

  async inspect(): Promise<ContainerState> {
    if (!this.host.engineReachable()) throw unreachable();
    return {
      running: this.alive,
      status: this.alive ? 'running' : 'exited',
      exitCode: this.alive ? null : 137,
      oomKilled: false,
      startedAt: this.info.createdAt,
      finishedAt: null,
      error: null,
    };
  }

  onEvent(listener: (event: SessionEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Removes the container: its processes die with it. */
  async remove(): Promise<void> {
    this.die('removed');
  }

  private emit(event: SessionEvent): void {
    for (const l of this.listeners) l(event);
  }

  private usable(what: string): void {
    if (!this.host.engineReachable()) throw unreachable();
    if (this.dead !== null)
      throw new BoxError(
        'SESSION_DEAD',
        'runtime',
        `Cannot ${what}: session ${this.info.name} is not running (${this.dead})`,
      );
  }
}

export function unreachable(): BoxError {
  return new BoxError(
    'ENGINE_UNREACHABLE',
    'box_unavailable',
    'The Docker engine does not answer (fake runtime: engine down)',
  );
}

async function drain(stream: Readable): Promise<void> {
  try {
    for await (const _chunk of stream) {
      // discarded, as an extraction consumes the archive
    }
  } catch {
    // a stream that fails is the producer's to report
  }
}
