/**
 * The health of a ready server, as the supervisor's client sees it: an MCP ping every interval
 * (no answer → SERVER_UNRESPONSIVE), and a client connection that drops while the process lives
 * is re-made without restarting the process (never re-made → RELAY_DROPPED). A process that is
 * ending stops answering first: its exit record is the better failure, so both wait for it a
 * moment before reporting their own.
 */
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { BoxError } from '../errors/box-error.js';
import { CLOSE_PROCESS_EXITED, CLOSE_STDOUT_CLOSED } from '../relay/close-codes.js';
import { delay } from '../util/abort.js';
import type { Attempt, ClientTransport } from './attempt.js';

/** How long a failed ping or a lost connection waits for an exit record before blaming the server. */
export const EXIT_SETTLE_MS = 5000;
export const RECONNECT_ATTEMPTS = 3;

export interface HealthOptions {
  name: string;
  /** Whether the attempt is still the server's current one and ready. */
  isCurrent: () => boolean;
  log: (line: string) => void;
}

/** Pings the attempt's client every `intervalMs` until the attempt closes. */
export function startPing(attempt: Attempt, intervalMs: number, opts: HealthOptions): void {
  if (intervalMs <= 0) return;
  const ping = async (): Promise<void> => {
    const client = attempt.client;
    if (client === null || !opts.isCurrent()) return;
    try {
      await client.ping({ timeout: Math.max(1000, Math.min(intervalMs, 30_000)) });
    } catch (err) {
      if (!opts.isCurrent() || attempt.client !== client) return;
      if ((await attempt.exitSoon(EXIT_SETTLE_MS)) !== null || !opts.isCurrent() || attempt.client !== client) return;
      attempt.fail({
        error: new BoxError(
          'SERVER_UNRESPONSIVE',
          'runtime',
          `"${opts.name}" did not answer ping: ${err instanceof Error ? err.message : String(err)}; restarting it`,
        ),
      });
    }
  };
  const timer = setInterval(() => void ping(), intervalMs);
  timer.unref();
  attempt.onClose(() => clearInterval(timer));
}

export interface ReconnectOptions extends HealthOptions {
  /** A new client over a new connection to the same process (taking it over from whoever holds it). */
  connect: () => Promise<{ client: Client; transport: ClientTransport }>;
}

/** Watches the attempt's client: when its connection drops while the process lives, makes a new one. */
export function watchConnection(attempt: Attempt, opts: ReconnectOptions): void {
  const client = attempt.client;
  if (client === null) return;
  // Not transport.onclose: the SDK's own handler (which fails pending requests) lives there.
  client.onclose = () => void onDropped(attempt, client, opts);
}

async function onDropped(attempt: Attempt, client: Client, opts: ReconnectOptions): Promise<void> {
  const proc = attempt.proc;
  if (attempt.client !== client || !opts.isCurrent() || proc === null || !proc.running) return;
  const why = attempt.transport?.closeInfo;
  // The process is ending (its exit record decides) or closed its stdout (the relay decides).
  if (why?.code === CLOSE_PROCESS_EXITED || why?.code === CLOSE_STDOUT_CLOSED) return;
  opts.log(
    `relay connection dropped (${why?.code ?? '?'} ${why?.reason ?? ''}); reconnecting without restarting the process`,
  );
  for (let i = 1; i <= RECONNECT_ATTEMPTS; i++) {
    if (!opts.isCurrent() || !proc.running) return;
    try {
      const next = await opts.connect();
      if (!opts.isCurrent()) return void next.client.close();
      attempt.client = next.client;
      attempt.transport = next.transport;
      watchConnection(attempt, opts);
      opts.log('relay reconnected');
      return;
    } catch (err) {
      opts.log(
        `relay reconnect ${i}/${RECONNECT_ATTEMPTS} failed: ${err instanceof Error ? err.message : String(err)}`,
      );
      await delay(250 * i);
    }
  }
  if ((await attempt.exitSoon(EXIT_SETTLE_MS)) !== null) return;
  attempt.fail({
    error: new BoxError('RELAY_DROPPED', 'runtime', `The relay of "${opts.name}" dropped and could not be reconnected`),
  });
}
