/**
 * The event store of one Streamable HTTP session: what `Last-Event-ID` resumes from. The SDK's transport numbers
 * nothing itself; it hands each SSE message to `storeEvent` and replays with `replayEventsAfter`. The SDK ships an
 * in-memory store only as an example, unbounded, so this one is our own: per stream, the last `maxEvents` events
 * and at most `maxBytes` of them are kept (the oldest go first); a stream past `maxStreams` drops its oldest stream.
 *
 * Event ids are `<stream>.<seq>`: the stream is found from the id without a lookup table, and the sequence runs
 * over the whole store (never restarting, even for a stream that was dropped and comes back, as the GET stream
 * does), so a resumed stream gets exactly the events after the one named, in order. An id that names an event
 * already dropped, a stream forgotten, or an event not stored yet cannot be resumed: the replay throws, and the
 * transport answers the GET with an error, so the client starts over rather than silently missing messages.
 * The stream written to last is kept longest (the live GET stream is never the one dropped for new POSTs).
 */
import type { EventId, EventStore, StreamId } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';

export interface EventStoreLimits {
  maxEvents: number;
  maxBytes: number;
  maxStreams: number;
}

export const DEFAULT_EVENT_STORE_LIMITS: EventStoreLimits = {
  maxEvents: 512,
  maxBytes: 4 * 1024 * 1024,
  maxStreams: 64,
};

interface Stored {
  seq: number;
  message: JSONRPCMessage;
  bytes: number;
}

interface Stream {
  events: Stored[];
  bytes: number;
  /** The seq of the first event this stream ever stored here (events before it were never in it). */
  first: number;
  /** The highest seq dropped from this stream by the bounds (0: none). */
  dropped: number;
}

export class BoundedEventStore implements EventStore {
  private readonly streams = new Map<StreamId, Stream>();
  private next = 1;

  constructor(private readonly limits: EventStoreLimits = DEFAULT_EVENT_STORE_LIMITS) {}

  storeEvent(streamId: StreamId, message: JSONRPCMessage): Promise<EventId> {
    const seq = this.next++;
    let stream = this.streams.get(streamId);
    // Re-inserted at the back: the map's order is least recently written first.
    if (stream !== undefined) this.streams.delete(streamId);
    stream ??= { events: [], bytes: 0, first: seq, dropped: 0 };
    this.streams.set(streamId, stream);
    while (this.streams.size > this.limits.maxStreams) {
      const oldest = this.streams.keys().next().value as StreamId;
      this.streams.delete(oldest);
    }
    const bytes = Buffer.byteLength(JSON.stringify(message), 'utf8');
    stream.events.push({ seq, message, bytes });
    stream.bytes += bytes;
    while (
      stream.events.length > this.limits.maxEvents ||
      (stream.bytes > this.limits.maxBytes && stream.events.length > 1)
    ) {
      const dropped = stream.events.shift();
      stream.bytes -= dropped?.bytes ?? 0;
      stream.dropped = dropped?.seq ?? stream.dropped;
    }
    return Promise.resolve(`${streamId}.${seq}`);
  }

  getStreamIdForEventId(eventId: EventId): Promise<StreamId | undefined> {
    return Promise.resolve(parseEventId(eventId)?.streamId);
  }

  async replayEventsAfter(
    lastEventId: EventId,
    { send }: { send: (eventId: EventId, message: JSONRPCMessage) => Promise<void> },
  ): Promise<StreamId> {
    const parsed = parseEventId(lastEventId);
    const stream = parsed === undefined ? undefined : this.streams.get(parsed.streamId);
    if (parsed === undefined || stream === undefined)
      throw new Error('Last-Event-ID names no stream of this session (it ended, or the id is not ours)');
    // The event named must be this stream's (stored here, not before the stream began, not in the future), and
    // every event after it still kept.
    if (parsed.seq < stream.first || parsed.seq >= this.next)
      throw new Error(`Last-Event-ID ${lastEventId} names no event of this stream`);
    if (parsed.seq < stream.dropped)
      throw new Error(`events after ${lastEventId} were dropped (only the last ${this.limits.maxEvents} are kept)`);
    for (const e of stream.events) if (e.seq > parsed.seq) await send(`${parsed.streamId}.${e.seq}`, e.message);
    return parsed.streamId;
  }

  /** Events kept over all streams (for tests and metrics). */
  get size(): number {
    let n = 0;
    for (const s of this.streams.values()) n += s.events.length;
    return n;
  }
}

function parseEventId(eventId: EventId): { streamId: StreamId; seq: number } | undefined {
  const dot = eventId.lastIndexOf('.');
  if (dot <= 0) return undefined;
  const digits = eventId.slice(dot + 1);
  if (!/^[1-9][0-9]{0,15}$/.test(digits)) return undefined;
  const seq = Number(digits);
  return { streamId: eventId.slice(0, dot), seq };
}
