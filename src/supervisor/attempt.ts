/**
 * One try at running a server: the session it runs in, the process, its relay and the
 * supervisor's client of it. The first failure reported by anyone (the exit watcher, health, a
 * tool call, the disk watch) ends the attempt: it becomes the reason of the attempt's
 * AbortController, so everything started for this attempt stops with it, and `ended` resolves
 * with it. `close()` tears down what was started, in order, once.
 */
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { RelayHub } from '../relay/relay-hub.js';
import type { StdioRelay } from '../relay/stdio-relay.js';
import type { ManagedProcess, ProcessExit, Session } from '../runtime/types.js';
import { delay } from '../util/abort.js';
import type { Failure } from './failure-record.js';

/** A transport that can say why it closed (the relay's close code and reason). */
export type ClientTransport = Transport & { readonly closeInfo?: { code: number; reason: string } | null };

export class Attempt implements AsyncDisposable {
  readonly startedAt = Date.now();
  proc: ManagedProcess | null = null;
  relay: StdioRelay | null = null;
  client: Client | null = null;
  transport: ClientTransport | null = null;
  /** The last exit record seen of this attempt's process. */
  exit: ProcessExit | null = null;
  readonly ended: Promise<Failure>;
  private readonly controller = new AbortController();
  private closing: Promise<void> | null = null;
  private readonly onTeardown: ((reason: string) => void)[] = [];

  constructor(
    readonly session: Session,
    private readonly relays: RelayHub,
    private readonly name: string,
    private readonly log: (line: string) => void,
  ) {
    this.ended = new Promise((resolve) => {
      this.controller.signal.addEventListener('abort', () => resolve(this.controller.signal.reason as Failure), {
        once: true,
      });
    });
  }

  /** Aborts with the failure that ended the attempt. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get failure(): Failure | null {
    return this.controller.signal.aborted ? (this.controller.signal.reason as Failure) : null;
  }

  /** Ends the attempt with `failure`, unless another failure ended it first (that one stands). */
  fail(failure: Failure): void {
    if (!this.controller.signal.aborted) this.controller.abort(failure);
  }

  /** The process's exit record if it ends within `ms`, else null. */
  async exitSoon(ms: number): Promise<ProcessExit | null> {
    if (this.proc === null) return null;
    return Promise.race([this.proc.exited, delay(ms).then(() => null)]);
  }

  /** Runs `fn` when the attempt is torn down (timers of its health watch, …). */
  onClose(fn: (reason: string) => void): void {
    this.onTeardown.push(fn);
  }

  /** Closes the client, unregisters the relay, stops the process (escalating). Idempotent. */
  close(reason = 'the attempt ended'): Promise<void> {
    this.closing ??= this.teardown(reason);
    return this.closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private async teardown(reason: string): Promise<void> {
    for (const fn of this.onTeardown.splice(0)) fn(reason);
    await this.client?.close().catch(() => undefined);
    if (this.relay !== null) this.relays.unregister(this.session.info.name, this.name, this.relay, reason);
    if (this.proc?.running === true) {
      const exit = await this.proc.stop();
      this.log(`process stopped (${exit.stoppedBy ?? exit.reason}, exit ${exit.exitCode})`);
    }
  }
}
