/**
 * Durable state under the state directory (default `.mcp-box/` beside the config), so logs,
 * history, the last failure of each server and task records survive a restart of
 * `serve`. Bounded: every file rotates at `maxFileBytes` (one predecessor kept). A write that
 * fails (disk full, a removed directory) never throws: it is counted and reported through
 * `onWriteError`, and later writes try again.
 *
 *   <dir>/servers/<name>/log.jsonl       LogLine per line
 *   <dir>/servers/<name>/history.jsonl   StatusEvent per state transition
 *   <dir>/servers/<name>/failure.jsonl   FailureRecord per failure (the last one is "the last failure")
 *   <dir>/tasks.jsonl                    TaskRecord of each task when it starts and when it ends
 *                                        (the last record of an id is its state)
 */
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { LogLine } from '../supervisor/server-log.js';
import type { FailureRecord, StatusEvent } from '../supervisor/types.js';
import type { TaskRecord } from '../tasks/task-registry.js';
import { JsonlFile } from './jsonl-file.js';
import type { DurableState, EarlierRun } from '../supervisor/durable-state.js';

const DEFAULT_MAX_FILE_BYTES = 2 * 1024 * 1024;

export interface StateStoreOptions {
  /** A write or rotation of `path` failed (disk full, EIO, …): the records are dropped, serve goes on. */
  onWriteError?: (err: Error, path: string) => void;
}

/** What a server left behind in an earlier run. */
export type ServerState = EarlierRun;

export class StateStore implements DurableState {
  private readonly files = new Map<string, JsonlFile>();

  constructor(
    readonly dir: string,
    private readonly maxFileBytes = DEFAULT_MAX_FILE_BYTES,
    private readonly opts: StateStoreOptions = {},
  ) {}

  /** Failed writes and rotations over all files so far (each file's are kept until it is forgotten). */
  get writeErrors(): number {
    let n = 0;
    for (const f of this.files.values()) n += f.writeErrors;
    return n;
  }

  appendLog(server: string, line: LogLine): void {
    this.file(join('servers', server, 'log.jsonl')).append(line);
  }

  appendHistory(server: string, event: StatusEvent): void {
    this.file(join('servers', server, 'history.jsonl')).append(event);
  }

  appendFailure(server: string, failure: FailureRecord): void {
    this.file(join('servers', server, 'failure.jsonl')).append(failure);
  }

  /** A task that starts is written at once: if serve dies while it works, the next run says so. */
  appendTask(task: TaskRecord): void {
    const file = this.file('tasks.jsonl');
    file.append(task);
    if (task.state === 'working') file.flush();
  }

  /** What a server left behind in an earlier run. */
  loadServer(server: string): ServerState {
    const failures = this.file(join('servers', server, 'failure.jsonl')).readAll<FailureRecord>();
    return {
      logs: this.file(join('servers', server, 'log.jsonl')).readAll<LogLine>(),
      history: this.file(join('servers', server, 'history.jsonl')).readAll<StatusEvent>(),
      lastFailure: failures.at(-1),
    };
  }

  loadTasks(): TaskRecord[] {
    return this.file('tasks.jsonl').readAll<TaskRecord>();
  }

  /** Servers with state on disk. */
  knownServers(): string[] {
    const dir = join(this.dir, 'servers');
    return existsSync(dir) ? readdirSync(dir) : [];
  }

  /** A removed server's state goes with it. */
  forgetServer(server: string): void {
    for (const name of ['log.jsonl', 'history.jsonl', 'failure.jsonl']) {
      const key = join('servers', server, name);
      this.files.get(key)?.flush();
      this.files.delete(key);
    }
    rmSync(join(this.dir, 'servers', server), { recursive: true, force: true });
  }

  flush(): void {
    for (const f of this.files.values()) f.flush();
  }

  private file(rel: string): JsonlFile {
    let f = this.files.get(rel);
    if (f === undefined) {
      const path = join(this.dir, rel);
      const onWriteError = this.opts.onWriteError;
      f = new JsonlFile(
        path,
        this.maxFileBytes,
        onWriteError === undefined ? {} : { onWriteError: (err) => onWriteError(err, path) },
      );
      this.files.set(rel, f);
    }
    return f;
  }
}
