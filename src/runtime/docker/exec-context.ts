/** What exec runners need from their session: the container, who to run as, and how to signal. */
import type Dockerode from 'dockerode';
import type { Phase } from '../../errors/box-error.js';
import type { ExecLimits } from './exec-wrapper.js';

export type KillTarget = { group: number } | 'all';

export interface ExecContext {
  container: Dockerode.Container;
  sessionName: string;
  /** "uid:gid" */
  user: string;
  env: Record<string, string>;
  limits?: ExecLimits;
  phase: Phase;
  /** Delivers `sig` inside the container as `user` (a second exec; Docker has no exec-kill API). */
  kill(user: string, target: KillTarget, sig: 'TERM' | 'KILL' | 'INT' | 'HUP'): Promise<void>;
  /** The engine refused an exec because the container is gone: the session is dead from now on. */
  onContainerGone?: (reason: string) => void;
}
