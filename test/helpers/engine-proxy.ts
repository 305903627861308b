/**
 * A unix-socket proxy in front of the Docker socket that a test can cut and restore, to make the
 * engine "unreachable" for one supervisor without touching the real engine. With `dropEvents`, the
 * engine's event stream answers its headers and then stays silent: every `die`, `kill` and
 * `destroy` is lost, as when the stream drops at the wrong moment.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { rmSync } from 'node:fs';

const HEADER_END = Buffer.from('\r\n\r\n');

export class EngineProxy {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();

  constructor(
    readonly path: string,
    private readonly target = '/var/run/docker.sock',
    private readonly opts: { dropEvents?: boolean } = {},
  ) {}

  async start(): Promise<void> {
    rmSync(this.path, { force: true });
    this.server = createServer((client) => {
      const upstream = createConnection(this.target);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => s.destroy());
      }
      client.pipe(upstream);
      if (this.opts.dropEvents !== true) {
        upstream.pipe(client);
        return;
      }
      // Connections are kept alive and reused: decide on each request. The event stream never
      // ends, so no request follows it on its connection; it gets its headers only.
      let decided: 'events' | 'other' = 'other';
      let seen = Buffer.alloc(0);
      client.on('data', (chunk: Buffer) => {
        const head = chunk.toString('latin1', 0, 200);
        if (/^GET \S*\/events[?\s]/.test(head)) {
          decided = 'events';
          seen = Buffer.alloc(0);
        } else if (/^(GET|POST|PUT|DELETE|HEAD) /.test(head)) decided = 'other';
      });
      upstream.on('data', (chunk: Buffer) => {
        if (decided !== 'events') return void client.write(chunk);
        if (seen.indexOf(HEADER_END) === -1) {
          const before = seen.length;
          seen = Buffer.concat([seen, chunk]);
          const end = seen.indexOf(HEADER_END);
          if (end === -1) return void client.write(chunk);
          client.write(chunk.subarray(0, end + HEADER_END.length - before));
        }
      });
      upstream.on('end', () => client.end());
    });
    await new Promise<void>((resolve) => this.server?.listen(this.path, resolve));
  }

  /** Refuses new connections and drops the open ones. */
  async cut(): Promise<void> {
    const server = this.server;
    this.server = null;
    for (const s of this.sockets) s.destroy();
    if (server !== null) await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(this.path, { force: true });
  }
}
