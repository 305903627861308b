/** The Docker implementation of the runtime contract. The only place that constructs dockerode. */
import { randomBytes } from 'node:crypto';
import Dockerode from 'dockerode';
import { pack } from 'tar-fs';
import { BoxError } from '../../errors/box-error.js';
import { once } from '../../util/once.js';
import { evaluateHardening, HARDENING_PROBE_SCRIPT, probeComplete } from '../hardening.js';
import { DEFAULT_NOFILE_PER_IDENTITY, DEFAULT_NPROC_PER_IDENTITY } from '../identity.js';
import { profileHash, resolveProfile } from '../profile.js';
import { SlotAllocator } from '../slot-allocator.js';
import type {
  BuildImageOptions,
  EngineInfo,
  EnsureSessionOptions,
  ImageInfo,
  ManagedResource,
  ReapReport,
  Runtime,
  Session,
  SessionInfo,
  SessionProfile,
} from '../types.js';
import { sessionContainerSpec } from './container-spec.js';
import { DockerSession } from './docker-session.js';
import { engineMessage, toBoxError } from './engine-errors.js';
import { EngineEvents } from './engine-events.js';
import { signalled } from './signalled.js';
import {
  currentOwner,
  LABEL_MANAGED,
  LABEL_OWNER,
  LABEL_PERSISTENT,
  LABEL_PROFILE_HASH,
  LABEL_SESSION,
  LABEL_TAG,
  LABEL_VOLUME,
  ownerLabels,
  ownerLiveness,
  type Owner,
} from './labels.js';

/** How long the hardening self-check of a session may take (a few greps and cats: seconds only under heavy load). */
const HARDENING_PROBE_TIMEOUT_MS = 15_000;

export interface DockerRuntimeOptions {
  /** Engine socket; default $DOCKER_HOST (unix://) or /var/run/docker.sock. */
  socketPath?: string;
  /** Stable owner id (a supervisor that restarts with the same id adopts its sessions). Default: random. */
  ownerId?: string;
  /** Extra label value put on everything created (tests use it to find their leftovers). */
  tag?: string;
  /** Per-identity limits applied inside sessions. */
  limits?: { nproc?: number; nofile?: number };
}

export function createDockerRuntime(opts: DockerRuntimeOptions = {}): Runtime {
  return new DockerRuntime(opts);
}

function defaultSocketPath(): string {
  const host = process.env.DOCKER_HOST;
  if (host !== undefined && host.startsWith('unix://')) return host.slice('unix://'.length);
  return '/var/run/docker.sock';
}

class DockerRuntime implements Runtime {
  readonly ownerId: string;
  private readonly docker: Dockerode;
  private readonly owner: Owner;
  private readonly tag: string | undefined;
  private readonly slots = new SlotAllocator();
  private readonly limits: { nproc: number; nofile: number };
  private readonly live = new Map<string, DockerSession>();
  private readonly pending = new Map<string, Promise<DockerSession>>();
  private readonly byContainer = new Map<string, DockerSession>();
  private events: EngineEvents | null = null;
  private readonly background = new Set<Promise<void>>();
  private lastPing: { at: number; info: EngineInfo } | null = null;
  private closed = false;

  constructor(opts: DockerRuntimeOptions) {
    this.docker = new Dockerode({ socketPath: opts.socketPath ?? defaultSocketPath() });
    this.ownerId = opts.ownerId ?? randomBytes(6).toString('hex');
    this.owner = currentOwner(this.ownerId);
    this.tag = opts.tag;
    this.limits = {
      nproc: opts.limits?.nproc ?? DEFAULT_NPROC_PER_IDENTITY,
      nofile: opts.limits?.nofile ?? DEFAULT_NOFILE_PER_IDENTITY,
    };
  }

  async ping(opts: { signal?: AbortSignal; maxAgeMs?: number } = {}): Promise<EngineInfo> {
    if (opts.maxAgeMs !== undefined && this.lastPing !== null && Date.now() - this.lastPing.at <= opts.maxAgeMs)
      return this.lastPing.info;
    const info = await this.pingEngine(opts);
    this.lastPing = { at: Date.now(), info };
    return info;
  }

  private async pingEngine(opts: { signal?: AbortSignal }): Promise<EngineInfo> {
    try {
      await signalled(this.docker, this.docker.ping)({ abortSignal: opts.signal });
      const [version, info] = await Promise.all([
        signalled<Dockerode.DockerVersion>(this.docker, this.docker.version)({ abortSignal: opts.signal }),
        signalled<Record<string, unknown>>(this.docker, this.docker.info)({ abortSignal: opts.signal }),
      ]);
      return {
        version: version.Version,
        apiVersion: version.ApiVersion,
        os: version.Os,
        arch: version.Arch,
        kernel: version.KernelVersion,
        cgroupVersion: info.CgroupVersion === '2' ? '2' : info.CgroupVersion === '1' ? '1' : 'unknown',
        securityOptions: Array.isArray(info.SecurityOptions) ? (info.SecurityOptions as string[]) : [],
      };
    } catch (err) {
      const boxError = toBoxError(err, 'box_unavailable', 'reach the Docker engine');
      throw boxError.code === 'ENGINE_UNREACHABLE'
        ? boxError
        : new BoxError('ENGINE_UNREACHABLE', 'box_unavailable', boxError.message, { cause: err });
    }
  }

  async ensureSession(partial: Partial<SessionProfile> = {}, opts: EnsureSessionOptions = {}): Promise<Session> {
    if (this.closed) throw new BoxError('SESSION_CREATE_FAILED', 'session_create', 'The runtime is closed');
    const profile = resolveProfile(partial);
    const hash = profileHash(profile);
    let inFlight = this.pending.get(hash);
    if (inFlight !== undefined) return inFlight;
    // Reused only when the engine says it runs: a lost `die` event must not hand out a dead session.
    const existing = this.live.get(hash);
    if (existing !== undefined && (await existing.checkAlive(opts.signal === undefined ? {} : { signal: opts.signal })))
      return existing;
    inFlight = this.pending.get(hash);
    if (inFlight === undefined) {
      inFlight = this.openSession(profile, hash, opts).finally(() => this.pending.delete(hash));
      this.pending.set(hash, inFlight);
    }
    return inFlight;
  }

  sessions(): Session[] {
    return [...this.live.values()];
  }

  async listManaged(opts: { signal?: AbortSignal } = {}): Promise<ManagedResource[]> {
    const filters = {
      label: [`${LABEL_MANAGED}=true`, ...(this.tag === undefined ? [] : [`${LABEL_TAG}=${this.tag}`])],
    };
    try {
      const [containers, volumes] = await Promise.all([
        this.docker.listContainers({ all: true, filters, abortSignal: opts.signal } as Dockerode.ContainerListOptions),
        signalled<{ Volumes: Dockerode.VolumeInspectInfo[] | null }>(
          this.docker,
          this.docker.listVolumes,
        )({ filters, abortSignal: opts.signal }),
      ]);
      const ownerState = (labels: Record<string, string>): ManagedResource['owner'] =>
        labels[LABEL_OWNER] === this.ownerId ? 'self' : ownerLiveness(labels);
      return [
        ...containers.map((c): ManagedResource => ({
          kind: 'container',
          name: (c.Names[0] ?? c.Id).replace(/^\//, ''),
          id: c.Id,
          ownerId: c.Labels[LABEL_OWNER] ?? '',
          owner: ownerState(c.Labels),
          labels: c.Labels,
          running: c.State === 'running',
        })),
        ...(volumes.Volumes ?? []).map((v: Dockerode.VolumeInspectInfo): ManagedResource => {
          const labels = (v.Labels ?? {}) as Record<string, string>;
          return {
            kind: 'volume',
            name: v.Name,
            id: v.Name,
            ownerId: labels[LABEL_OWNER] ?? '',
            owner: ownerState(labels),
            labels,
          };
        }),
      ];
    } catch (err) {
      throw toBoxError(err, 'session_create', 'list mcp-box containers');
    }
  }

  async reap(opts: { signal?: AbortSignal; includeUnknownOwners?: boolean } = {}): Promise<ReapReport> {
    const report: ReapReport = { removedContainers: [], removedVolumes: [], kept: [] };
    const resources = await this.listManaged(opts);
    // Persistent sessions are meant to outlive their owner: only `--all` removes them.
    const persistent = (r: ManagedResource): boolean => r.labels[LABEL_PERSISTENT] === 'true';
    const reapable = (r: ManagedResource): boolean =>
      opts.includeUnknownOwners === true
        ? r.owner === 'dead' || r.owner === 'unknown'
        : r.owner === 'dead' && !persistent(r);
    for (const r of resources.filter((x) => x.kind === 'container')) {
      if (!reapable(r)) {
        report.kept.push(r.name);
        continue;
      }
      try {
        await this.docker.getContainer(r.id).remove({ force: true, v: true, abortSignal: opts.signal } as never);
        report.removedContainers.push(r.name);
      } catch (err) {
        if (toBoxError(err, 'shutdown', 'remove').code !== 'NOT_FOUND')
          throw toBoxError(err, 'shutdown', `remove container ${r.name}`);
      }
    }
    for (const r of resources.filter((x) => x.kind === 'volume')) {
      if (!reapable(r)) {
        report.kept.push(r.name);
        continue;
      }
      try {
        await this.docker.getVolume(r.name).remove({ abortSignal: opts.signal } as never);
        report.removedVolumes.push(r.name);
      } catch (err) {
        const code = toBoxError(err, 'shutdown', 'remove').code;
        if (code === 'CONFLICT') report.kept.push(r.name);
        else if (code !== 'NOT_FOUND') throw toBoxError(err, 'shutdown', `remove volume ${r.name}`);
      }
    }
    return report;
  }

  async imageInfo(ref: string, opts: { signal?: AbortSignal } = {}): Promise<ImageInfo | null> {
    try {
      const image = this.docker.getImage(ref);
      const info = await signalled<Dockerode.ImageInspectInfo>(image, image.inspect)({ abortSignal: opts.signal });
      return { id: info.Id, labels: (info.Config.Labels ?? {}) as Record<string, string>, created: info.Created };
    } catch (err) {
      const boxError = toBoxError(err, 'image', `inspect image ${ref}`);
      if (boxError.code === 'NOT_FOUND') return null;
      throw boxError;
    }
  }

  async buildImage(opts: BuildImageOptions): Promise<ImageInfo> {
    let stream: NodeJS.ReadableStream;
    try {
      stream = await this.docker.buildImage(
        pack(opts.contextDir) as unknown as NodeJS.ReadableStream,
        {
          t: opts.tag,
          buildargs: opts.buildArgs ?? {},
          labels: opts.labels ?? {},
          rm: true,
          forcerm: true,
          abortSignal: opts.signal,
        } as Dockerode.ImageBuildOptions,
      );
    } catch (err) {
      throw toBoxError(err, 'image', `build image ${opts.tag}`, 'IMAGE_BUILD_FAILED');
    }
    await new Promise<void>((resolve, reject) => {
      let failure: string | null = null;
      this.docker.modem.followProgress(
        stream,
        (err: Error | null) => {
          if (err !== null) reject(toBoxError(err, 'image', `build image ${opts.tag}`, 'IMAGE_BUILD_FAILED'));
          else if (failure !== null)
            reject(new BoxError('IMAGE_BUILD_FAILED', 'image', `Failed to build image ${opts.tag}: ${failure}`));
          else resolve();
        },
        (event: { stream?: string; status?: string; error?: string; errorDetail?: { message?: string } }) => {
          if (event.error !== undefined) failure = event.errorDetail?.message ?? event.error;
          const text = event.stream ?? event.status ?? event.error;
          if (text !== undefined) for (const line of text.split('\n')) if (line.trim() !== '') opts.onProgress?.(line);
        },
      );
    });
    const info = await this.imageInfo(opts.tag, opts.signal === undefined ? {} : { signal: opts.signal });
    if (info === null)
      throw new BoxError('IMAGE_BUILD_FAILED', 'image', `Image ${opts.tag} is missing after its build`);
    return info;
  }

  readonly close = once(async (opts: { removeSessions?: boolean; signal?: AbortSignal } = {}): Promise<void> => {
    this.closed = true;
    await Promise.allSettled([...this.pending.values(), ...this.background]);
    if (opts.removeSessions !== false) {
      const toRemove = [...this.live.values()].filter((s) => s.info.persistent !== true);
      const results = await Promise.allSettled(
        toRemove.map((s) => s.remove(opts.signal === undefined ? {} : { signal: opts.signal })),
      );
      // A creation that was cut short (aborted by shutdown — the engine finishes a create whose
      // request was dropped — or the engine went away between volume and container) leaves
      // resources no session knows: sweep everything of this owner by label.
      await this.sweepOwnResources().catch(() => undefined);
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      this.events?.close();
      if (failed !== undefined) throw failed.reason;
    }
    this.events?.close();
  });

  private async sweepOwnResources(): Promise<void> {
    const own = (await this.listManaged()).filter((r) => r.owner === 'self' && r.labels[LABEL_PERSISTENT] !== 'true');
    for (const c of own.filter((r) => r.kind === 'container'))
      await this.docker
        .getContainer(c.id)
        .remove({ force: true, v: true })
        .catch(() => undefined);
    // The engine refuses (409) to remove a volume a container still uses: persistent sessions keep theirs.
    for (const v of own.filter((r) => r.kind === 'volume'))
      await this.docker
        .getVolume(v.name)
        .remove()
        .catch(() => undefined);
  }

  private ensureEvents(): EngineEvents {
    this.events ??= new EngineEvents(
      this.docker,
      (containerId, event) => this.byContainer.get(containerId)?.handleEngineEvent(event),
      // Events may have been missed while the stream was down: ask about every live session.
      () => void Promise.allSettled([...this.live.values()].map((s) => s.checkAlive())),
    );
    return this.events;
  }

  private async openSession(profile: SessionProfile, hash: string, opts: EnsureSessionOptions): Promise<DockerSession> {
    // The supervisor pinged a moment ago; a stale answer costs nothing here (the next call fails).
    await this.ping({ maxAgeMs: 2000, ...(opts.signal === undefined ? {} : { signal: opts.signal }) });
    await this.ensureEvents().whenReady();
    // A dead predecessor's workspace volume (identities, installed dependencies, caches, the
    // servers' own data) survives its container: the replacement mounts it.
    const predecessor = this.live.get(hash);
    const keepVolume =
      predecessor !== undefined && !predecessor.alive && (await this.volumeExists(predecessor.info.volume, opts.signal))
        ? predecessor.info.volume
        : null;
    const adopted = await this.adopt(profile, hash, opts, keepVolume);
    if (adopted !== null) return adopted;

    const labels: Record<string, string> = {
      ...ownerLabels(this.owner),
      [LABEL_PROFILE_HASH]: hash,
      [LABEL_PERSISTENT]: opts.persistent === true ? 'true' : 'false',
      ...(this.tag === undefined ? {} : { [LABEL_TAG]: this.tag }),
    };
    // A generation suffix keeps a re-created session apart from the one it replaces (an old
    // handle's remove() must never touch the new session's volume).
    const name = `mcp-box-${this.ownerId}-${hash}-${randomBytes(2).toString('hex')}`;
    labels[LABEL_SESSION] = name;
    const volume = keepVolume ?? `${name}-ws`;
    labels[LABEL_VOLUME] = volume;
    let containerId: string | null = null;
    try {
      if (keepVolume === null)
        await this.docker.createVolume({ Name: volume, Labels: labels, abortSignal: opts.signal } as never);
      const container = await this.docker.createContainer({
        ...sessionContainerSpec({ name, profile, volume, labels }),
        abortSignal: opts.signal,
      } as Dockerode.ContainerCreateOptions);
      containerId = container.id;
      const [imageId] = await Promise.all([
        this.imageInfo(profile.image, opts.signal === undefined ? {} : { signal: opts.signal }).then((i) => i?.id),
        container.start({ abortSignal: opts.signal } as never),
      ]);
      const session = this.register({
        name,
        containerId: container.id,
        profileHash: hash,
        profile,
        volume,
        state: 'running',
        createdAt: new Date().toISOString(),
        persistent: opts.persistent === true,
        ...(imageId === undefined ? {} : { imageId }),
      });
      if (keepVolume !== null && predecessor !== undefined) {
        predecessor.handOverTo(session);
        // The same checks an adopted session gets (nothing but the held identities' folders stays),
        // beside the hardening probe.
        await Promise.all([this.checkHardening(session, profile), session.clearLeftovers()]);
        return session;
      }
      await this.checkHardening(session, profile);
      return session;
    } catch (err) {
      // A re-attached volume is kept: it holds what the replacement failed to reach, not garbage.
      await this.discard(containerId, keepVolume === null ? volume : null);
      if (err instanceof BoxError) throw err;
      const status = (err as { statusCode?: number }).statusCode;
      if (status === 404 && /image/i.test(engineMessage(err))) {
        throw new BoxError(
          'IMAGE_MISSING',
          'session_create',
          `Image ${profile.image} is not present on the engine; ` +
            'build it with `mcp-box image build` (or npm run image)',
          {
            cause: err,
            details: { image: profile.image },
          },
        );
      }
      throw toBoxError(err, 'session_create', `create session ${name}`, 'SESSION_CREATE_FAILED');
    }
  }

  /** Reuses a running container of this owner and profile (a restarted supervisor with a stable id). */
  private async adopt(
    profile: SessionProfile,
    hash: string,
    opts: EnsureSessionOptions,
    keepVolume: string | null,
  ): Promise<DockerSession | null> {
    let found: Dockerode.ContainerInfo[];
    try {
      found = await this.docker.listContainers({
        all: true,
        filters: { label: [`${LABEL_OWNER}=${this.ownerId}`, `${LABEL_PROFILE_HASH}=${hash}`] },
        abortSignal: opts.signal,
      } as Dockerode.ContainerListOptions);
    } catch (err) {
      throw toBoxError(err, 'session_create', 'list sessions');
    }
    for (const c of found) {
      const name = c.Labels[LABEL_SESSION] ?? (c.Names[0] ?? '').replace(/^\//, '');
      const volume = c.Labels[LABEL_VOLUME] ?? `${name}-ws`;
      // A container this runtime already knows is one it found dead (or it would not be here): a
      // dying container still lists as running for a moment, and must not be adopted back.
      if (c.State !== 'running' || this.byContainer.has(c.Id)) {
        // The dead container of a volume being re-attached goes in the background: its removal
        // (hundreds of ms) is not on the recovery path. close() waits for it.
        if (volume === keepVolume) this.inBackground(this.discard(c.Id, null));
        else await this.discard(c.Id, volume);
        continue;
      }
      const session = this.register({
        name,
        containerId: c.Id,
        profileHash: hash,
        profile,
        volume,
        state: 'running',
        createdAt: new Date(c.Created * 1000).toISOString(),
        persistent: c.Labels[LABEL_PERSISTENT] === 'true',
        imageId: c.ImageID,
      });
      try {
        await this.checkHardening(session, profile);
        // Whatever the previous owner left running or staged in it goes before anyone uses it.
        await session.clearLeftovers();
      } catch (err) {
        // Not adopted after all. Forgotten, not removed: the next attempt adopts it afresh and runs both checks
        // again; a registered session would be handed out as it is, with the previous owner's processes alive.
        this.unregister(session);
        throw err instanceof BoxError ? err : toBoxError(err, 'session_create', `adopt session ${name}`);
      }
      return session;
    }
    return null;
  }

  private register(info: SessionInfo): DockerSession {
    const session = new DockerSession(info, {
      docker: this.docker,
      slots: this.slots,
      limits: this.limits,
      onRemoved: (s) => {
        if (this.live.get(s.info.profileHash) === s) this.live.delete(s.info.profileHash);
        this.byContainer.delete(s.info.containerId);
      },
    });
    this.live.set(info.profileHash, session);
    this.byContainer.set(info.containerId, session);
    return session;
  }

  private unregister(session: DockerSession): void {
    if (this.live.get(session.info.profileHash) === session) this.live.delete(session.info.profileHash);
    this.byContainer.delete(session.info.containerId);
  }

  private async checkHardening(session: DockerSession, profile: SessionProfile): Promise<void> {
    const probe = await session.exec({
      cmd: ['/bin/sh', '-c', HARDENING_PROBE_SCRIPT],
      timeoutMs: HARDENING_PROBE_TIMEOUT_MS,
      cwd: '/',
    });
    // No verdict from an unfinished probe: the container is kept (an adopted one holds its tenants' data) and the
    // caller's next attempt probes again.
    if (probe.timedOut || !probeComplete(probe.stdout))
      throw new BoxError(
        'SESSION_CREATE_FAILED',
        'session_create',
        `The hardening self-check of session ${session.info.name} did not finish (` +
          (probe.timedOut ? `timed out after ${HARDENING_PROBE_TIMEOUT_MS / 1000} s` : 'its output is incomplete') +
          '); it is tried again with the next attempt',
        { details: { exitCode: probe.exitCode, timedOut: probe.timedOut } },
      );
    const report = evaluateHardening(probe.stdout, profile);
    if (!report.ok) {
      await session.remove().catch(() => undefined);
      throw new BoxError(
        'HARDENING_CHECK_FAILED',
        'session_create',
        `Session ${session.info.name} failed its hardening self-check: ${report.failures.join('; ')}`,
        {
          details: { failures: report.failures, observed: report.values },
        },
      );
    }
  }

  private async discard(containerId: string | null, volume: string | null): Promise<void> {
    if (containerId !== null)
      await this.docker
        .getContainer(containerId)
        .remove({ force: true, v: true })
        .catch(() => undefined);
    if (volume !== null)
      await this.docker
        .getVolume(volume)
        .remove()
        .catch(() => undefined);
  }

  private inBackground(work: Promise<void>): void {
    const tracked = work.catch(() => undefined).finally(() => this.background.delete(tracked));
    this.background.add(tracked);
  }

  private async volumeExists(volume: string, signal?: AbortSignal): Promise<boolean> {
    try {
      const v = this.docker.getVolume(volume);
      await signalled(v, v.inspect)({ abortSignal: signal });
      return true;
    } catch (err) {
      const boxError = toBoxError(err, 'session_create', `inspect volume ${volume}`);
      if (boxError.code === 'NOT_FOUND') return false;
      throw boxError;
    }
  }
}
