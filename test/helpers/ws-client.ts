/** A raw WebSocket client for relay tests: collects text frames, exposes the close code/reason. */
import { WebSocket } from 'ws';

export interface RawClient {
  ws: WebSocket;
  frames: string[];
  /** Resolves with the next frame (or one already received and not yet taken). */
  next(timeoutMs?: number): Promise<string>;
  closed: Promise<{ code: number; reason: string }>;
}

export interface RawClientOptions {
  token?: string;
  takeover?: boolean;
  /** Hold the process alone (`X-MCP-Box-Exclusive: 1`) instead of sharing it with its other clients. */
  exclusive?: boolean;
  headers?: Record<string, string>;
  maxPayload?: number;
}

export async function connectRaw(url: string, opts: RawClientOptions = {}): Promise<RawClient> {
  const ws = new WebSocket(url, 'mcp', {
    headers: {
      ...(opts.token === undefined ? {} : { Authorization: `Bearer ${opts.token}` }),
      ...(opts.takeover === true ? { 'X-MCP-Box-Takeover': '1' } : {}),
      ...(opts.exclusive === true ? { 'X-MCP-Box-Exclusive': '1' } : {}),
      ...opts.headers,
    },
    maxPayload: opts.maxPayload ?? 64 * 1024 * 1024,
    perMessageDeflate: false,
  });
  const frames: string[] = [];
  let taken = 0;
  const waiters: (() => void)[] = [];
  ws.on('message', (data: Buffer) => {
    frames.push(data.toString('utf8'));
    for (const w of waiters.splice(0)) w();
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('unexpected-response', (_req, res) =>
      reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode })),
    );
    ws.once('error', reject);
  });
  return {
    ws,
    frames,
    closed,
    next(timeoutMs = 15_000) {
      return new Promise((resolve, reject) => {
        const take = (): boolean => {
          if (taken < frames.length) {
            resolve(frames[taken++] as string);
            return true;
          }
          return false;
        };
        if (take()) return;
        const timer = setTimeout(
          () => reject(new Error(`no frame within ${timeoutMs} ms (${frames.length} received)`)),
          timeoutMs,
        );
        const check = (): void => {
          if (take()) clearTimeout(timer);
          else waiters.push(check);
        };
        waiters.push(check);
      });
    },
  };
}

/** Rejects with the HTTP status of a refused upgrade. */
export async function refusedStatus(url: string, opts: RawClientOptions): Promise<number> {
  try {
    const c = await connectRaw(url, opts);
    c.ws.close();
    return 101;
  } catch (err) {
    return (err as { status?: number }).status ?? -1;
  }
}
