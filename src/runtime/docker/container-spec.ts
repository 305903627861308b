/**
 * The hardened container spec of a session (BRIEF §3, security-and-faults §1.8), as an Engine API
 * create body. Pure: the same inputs give the same spec, so it is unit-tested field by field.
 */
import { SESSION_UID } from '../identity.js';
import type { SessionProfile } from '../types.js';

export const WORKSPACE_MOUNT = '/workspace';
const MIB = 1024 * 1024;

export interface SessionContainerInput {
  name: string;
  profile: SessionProfile;
  volume: string;
  labels: Record<string, string>;
}

export interface SessionCreateBody {
  name: string;
  Image: string;
  User: string;
  Cmd: string[];
  Entrypoint: string[];
  WorkingDir: string;
  Env: string[];
  Labels: Record<string, string>;
  NetworkDisabled: boolean;
  AttachStdin: false;
  AttachStdout: false;
  AttachStderr: false;
  OpenStdin: false;
  Tty: false;
  HostConfig: {
    Init: true;
    Privileged: false;
    CapDrop: string[];
    CapAdd: string[];
    SecurityOpt: string[];
    ReadonlyRootfs: boolean;
    Tmpfs: Record<string, string>;
    Mounts: { Type: 'volume'; Source: string; Target: string; ReadOnly: false }[];
    NetworkMode: string;
    PidsLimit: number;
    Memory: number;
    MemorySwap: number;
    NanoCpus: number;
    Ulimits: { Name: string; Soft: number; Hard: number }[];
    IpcMode: 'private';
    PublishAllPorts: false;
    RestartPolicy: { Name: 'no' };
    LogConfig: { Type: string; Config: Record<string, string> };
  };
}

export function sessionContainerSpec(input: SessionContainerInput): SessionCreateBody {
  const { profile } = input;
  const memory = profile.memoryMb * MIB;
  return {
    name: input.name,
    Image: profile.image,
    // PID 1 is docker-init (Init: true) running `sleep infinity` as an unprivileged uid.
    User: `${SESSION_UID}:${SESSION_UID}`,
    Entrypoint: [],
    Cmd: ['sleep', 'infinity'],
    WorkingDir: WORKSPACE_MOUNT,
    Env: [],
    Labels: input.labels,
    NetworkDisabled: profile.network === 'off',
    AttachStdin: false,
    AttachStdout: false,
    AttachStderr: false,
    OpenStdin: false,
    Tty: false,
    HostConfig: {
      Init: true,
      Privileged: false,
      CapDrop: ['ALL'],
      CapAdd: [],
      SecurityOpt: ['no-new-privileges:true'],
      ReadonlyRootfs: profile.readOnlyRootfs,
      Tmpfs: { '/tmp': `rw,nosuid,nodev,size=${profile.tmpfsMb}m,mode=1777` },
      // The workspace is a named volume (never a host bind mount): staging copies into it.
      Mounts: [{ Type: 'volume', Source: input.volume, Target: WORKSPACE_MOUNT, ReadOnly: false }],
      NetworkMode: profile.network === 'off' ? 'none' : 'bridge',
      PidsLimit: profile.pidsLimit,
      Memory: memory,
      MemorySwap: memory,
      NanoCpus: Math.round(profile.cpus * 1e9),
      Ulimits: [
        { Name: 'core', Soft: 0, Hard: 0 },
        { Name: 'nofile', Soft: 8192, Hard: 8192 },
      ],
      IpcMode: 'private',
      PublishAllPorts: false,
      RestartPolicy: { Name: 'no' },
      LogConfig: { Type: 'json-file', Config: { 'max-size': '1m', 'max-file': '1' } },
    },
  };
}
