/**
 * The runtime contract: container sessions, one-shot execs and managed processes.
 * Nothing here mentions dockerode; src/runtime/docker/ implements it against the Engine API.
 */
import type { Readable, Writable } from 'node:stream';
import type { BoxError } from '../errors/box-error.js';

export interface EngineInfo {
  /** Engine version, e.g. "20.10.24". */
  version: string;
  apiVersion: string;
  os: string;
  arch: string;
  kernel: string;
  cgroupVersion: '1' | '2' | 'unknown';
  securityOptions: string[];
}

/** What decides which shared container a server runs in: servers with equal profiles share one. */
export interface SessionProfile {
  image: string;
  network: 'on' | 'off';
  cpus: number;
  memoryMb: number;
  pidsLimit: number;
  readOnlyRootfs: boolean;
  /** Size of the /tmp tmpfs. */
  tmpfsMb: number;
}

export type SessionState = 'running' | 'dead';

export interface SessionInfo {
  /** Stable session name (also the container name). */
  name: string;
  containerId: string;
  profileHash: string;
  profile: SessionProfile;
  volume: string;
  state: SessionState;
  createdAt: string;
  /** Survives the runtime's close(). */
  persistent: boolean;
  /** The image's content id (sessions of one image id have the same tools). */
  imageId?: string;
}

/** The uid a piece of tenant code runs as, with its private folders inside the session. */
export interface Identity {
  /** Slot number inside the session; uid = gid = SLOT_UID_BASE + slot. */
  slot: number;
  uid: number;
  gid: number;
  /** The 0700 root of everything this identity owns, e.g. /workspace/.mcp/s3-1a2b…/ */
  root: string;
  home: string;
  tmp: string;
  /** Where staged code lives: a symlink to the current staged generation (`ws.<gen>`). */
  workspace: string;
}

export interface DiskUsage {
  /** Allocated bytes (blocks × 1 KiB), the figure a disk fills by. */
  bytes: number;
  /** Files, folders and links. */
  entries: number;
}

export interface ExecSpec {
  cmd: string[];
  /** Run as this identity (its uid/gid, HOME, TMPDIR, process limit); omitted = the session user. */
  identity?: Identity;
  /** Passed through the Engine API's Env field, never argv. */
  env?: Record<string, string>;
  cwd?: string;
  /** Written to stdin, then stdin is closed (a stream is piped with backpressure). Omitted = no stdin. */
  stdin?: string | Buffer | Readable;
  /** Kills only this exec (its process group) when exceeded. */
  timeoutMs?: number;
  /** Capture limit per stream; the tail is kept. Default 1 MiB. */
  maxOutputBytes?: number;
  signal?: AbortSignal;
  /** Called with each chunk of output as it arrives (install progress). */
  onOutput?: (stream: 'stdout' | 'stderr', chunk: Buffer) => void;
}

export interface ExecResult {
  exitCode: number | null;
  timedOut: boolean;
  cancelled: boolean;
  /** Tails (at most maxOutputBytes each). */
  stdout: string;
  stderr: string;
  stdoutTruncated: boolean;
  stderrTruncated: boolean;
  /** PID inside the container. */
  pid: number | null;
  durationMs: number;
}

export interface ManagedProcessSpec {
  /** Caller's id for the process (a server name); used in labels, logs and errors. */
  id: string;
  cmd: string[];
  identity: Identity;
  env?: Record<string, string>;
  cwd?: string;
  /** Size of the stderr ring. Default 64 KiB. */
  stderrRingBytes?: number;
  /** Every stderr chunk as it arrives (it is also kept in the ring). */
  onStderr?: (chunk: Buffer) => void;
  /** This process's uid may run at most this many processes (default: the runtime's limit). */
  processLimit?: number;
  /** No file this process (or its children) writes may grow past this many bytes (RLIMIT_FSIZE):
   * the write fails with EFBIG, or SIGXFSZ ends a writer that does not ignore it. */
  fileSizeLimitBytes?: number;
  /** Work done in the same exec before the command (a stage): one exec instead of two. */
  prelude?: ProcessPrelude;
  signal?: AbortSignal;
}

/**
 * A POSIX sh script run as the identity in the process's own exec, before the command. It reads exactly `stdin`
 * (sent first, before anything else reaches the process), and whatever it prints is its output, never the
 * process's. It exits 0 to run the command, PRELUDE_STOP_EXIT to end the exec there (the command is not run:
 * not a failure), anything else to fail.
 */
export interface ProcessPrelude {
  script: string;
  stdin: Buffer;
  /** Kill every other process of the identity first (none may touch what the prelude writes). */
  exclusive: boolean;
  timeoutMs: number;
}

/** The prelude's exit status that means "done, do not run the command". */
export const PRELUDE_STOP_EXIT = 100;

export interface PreludeOutcome {
  status: 'ran' | 'stopped' | 'failed';
  /** Its output lines (stdout and stderr, in order), at most 64 KiB. */
  output: string[];
  /** The exec's exit code when the command did not run. */
  exitCode: number | null;
  durationMs: number;
}

export type ExitReason =
  /** The process ended by itself. */
  | 'exited'
  /** Stopped on request (stdin EOF, SIGTERM or SIGKILL from the escalation). */
  | 'stopped'
  /** Killed by the kernel's OOM killer. */
  | 'oom'
  /** The session container died under it. */
  | 'container_died'
  /** The engine stopped answering; the process state is unknown. */
  | 'engine_lost';

export interface ProcessExit {
  exitCode: number | null;
  /** Signal name when the exit code says the process was killed by one (128 + n). */
  signal: string | null;
  reason: ExitReason;
  oomKilled: boolean;
  /** Which escalation step ended a stop: 'eof' | 'sigterm' | 'sigkill'. */
  stoppedBy: 'eof' | 'sigterm' | 'sigkill' | null;
  stderrTail: string;
  startedAt: string;
  endedAt: string;
  durationMs: number;
}

export interface StopOptions {
  /** Wait after stdin EOF before SIGTERM. Default 2000 ms. */
  eofGraceMs?: number;
  /** Wait after SIGTERM before SIGKILL. Default 3000 ms. */
  termGraceMs?: number;
  signal?: AbortSignal;
}

export interface ManagedProcess {
  readonly id: string;
  readonly session: string;
  readonly identity: Identity;
  /** In-container PID, known once the process started. */
  readonly pid: number;
  readonly startedAt: string;
  readonly stdin: Writable;
  readonly stdout: Readable;
  /** True until `exited` settles. */
  readonly running: boolean;
  /** How the prelude ended, for a process started with one (the process runs only when `ran`). */
  readonly prelude?: PreludeOutcome;
  /** Resolves (never rejects) with the exit record. */
  readonly exited: Promise<ProcessExit>;
  /** The last bytes of stderr as text. */
  stderrTail(): string;
  /**
   * Whether the process (or anything of its uid) still holds its stdout; the engine's attach stream has no
   * per-stream EOF.
   */
  stdoutState?(): Promise<'open' | 'closed' | 'unknown'>;
  /** Delivers a signal inside the container to the process group (as the process's uid). */
  kill(signal: 'SIGTERM' | 'SIGKILL' | 'SIGINT' | 'SIGHUP', opts?: { signal?: AbortSignal }): Promise<void>;
  /** stdin EOF → grace → SIGTERM → grace → SIGKILL (everything of the uid). Idempotent. */
  stop(opts?: StopOptions): Promise<ProcessExit>;
}

/** Something the engine reported about a session container. */
export interface SessionEvent {
  session: string;
  containerId: string;
  action: 'die' | 'oom' | 'kill' | 'start' | 'destroy' | 'exec_die';
  exitCode?: number;
  signal?: string;
  execId?: string;
  at: string;
}

export interface Session {
  readonly info: SessionInfo;
  readonly alive: boolean;
  /**
   * Asks the engine whether the container still runs (marks the session dead when not). With
   * `settleMs`, keeps asking that long while it runs: a container being killed ends its execs
   * before the engine records its exit.
   */
  checkAlive(opts?: { signal?: AbortSignal; settleMs?: number }): Promise<boolean>;
  /** Why the session died (the first sign of it), null while it lives. */
  readonly diedBecause: string | null;
  /**
   * Reserves a slot (uid) and creates its private 0700 folders; kills leftovers of that uid first.
   * With `provision: false` only the slot is reserved: the first stage creates the folders.
   */
  createIdentity(opts?: { signal?: AbortSignal; provision?: boolean }): Promise<Identity>;
  /** Kills everything running as the identity, deletes its folders and frees the slot. */
  releaseIdentity(identity: Identity, opts?: { signal?: AbortSignal }): Promise<void>;
  /** Whether this session holds the identity (also one moved over from a dead session whose volume it re-attached). */
  holds(identity: Identity): boolean;
  /** What an identity's folders hold on disk (staged code, installs, HOME, TMPDIR), measured as that uid. */
  diskUsage(identity: Identity, opts?: { signal?: AbortSignal; timeoutMs?: number }): Promise<DiskUsage>;
  exec(spec: ExecSpec): Promise<ExecResult>;
  startProcess(spec: ManagedProcessSpec): Promise<ManagedProcess>;
  processes(): ManagedProcess[];
  inspect(opts?: { signal?: AbortSignal }): Promise<ContainerState>;
  /** Session-level events (die, oom, kill). */
  onEvent(listener: (event: SessionEvent) => void): () => void;
  /** Removes the container and its workspace volume. Idempotent. */
  remove(opts?: { signal?: AbortSignal }): Promise<void>;
}

export interface ContainerState {
  running: boolean;
  status: string;
  exitCode: number | null;
  oomKilled: boolean;
  startedAt: string | null;
  finishedAt: string | null;
  error: string | null;
}

export interface ReapReport {
  removedContainers: string[];
  removedVolumes: string[];
  kept: string[];
}

export type RuntimeErrorListener = (error: BoxError) => void;

export interface ManagedResource {
  kind: 'container' | 'volume';
  name: string;
  id: string;
  ownerId: string;
  owner: 'self' | 'alive' | 'dead' | 'unknown';
  labels: Record<string, string>;
  running?: boolean;
}

export interface ImageInfo {
  id: string;
  labels: Record<string, string>;
  created: string;
}

export interface BuildImageOptions {
  /** Folder holding the Dockerfile (the whole folder is the build context). */
  contextDir: string;
  tag: string;
  buildArgs?: Record<string, string>;
  labels?: Record<string, string>;
  onProgress?: (line: string) => void;
  signal?: AbortSignal;
}

export interface EnsureSessionOptions {
  signal?: AbortSignal;
  /** Kept when the runtime closes (serve's `persistent` sessions). */
  persistent?: boolean;
}

/** The runtime: engine connection, sessions, images and the reaper. */
export interface Runtime {
  readonly ownerId: string;
  /** `maxAgeMs`: reuse the answer of a ping that succeeded at most that long ago. */
  ping(opts?: { signal?: AbortSignal; maxAgeMs?: number }): Promise<EngineInfo>;
  ensureSession(profile?: Partial<SessionProfile>, opts?: EnsureSessionOptions): Promise<Session>;
  sessions(): Session[];
  listManaged(opts?: { signal?: AbortSignal }): Promise<ManagedResource[]>;
  /** Removes containers and volumes whose owner process is dead (never the caller's own). */
  reap(opts?: { signal?: AbortSignal; includeUnknownOwners?: boolean }): Promise<ReapReport>;
  imageInfo(ref: string, opts?: { signal?: AbortSignal }): Promise<ImageInfo | null>;
  buildImage(opts: BuildImageOptions): Promise<ImageInfo>;
  /** Stops engine event handling; removes this owner's non-persistent sessions unless told not to. */
  close(opts?: { removeSessions?: boolean; signal?: AbortSignal }): Promise<void>;
}
