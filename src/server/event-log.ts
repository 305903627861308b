/**
 * The ordered stream behind `GET /v1/events`: every event gets an increasing id, the last
 * `capacity` are kept so a client that reconnects with `Last-Event-ID` gets what it missed.
 */
import { EventEmitter } from 'node:events';

export interface LoggedEvent {
  id: number;
  type: string;
  data: unknown;
}

export class EventLog extends EventEmitter<{ event: [LoggedEvent] }> {
  private events: LoggedEvent[] = [];
  private nextId = 1;

  constructor(private readonly capacity = 2000) {
    super();
    this.setMaxListeners(0);
  }

  append(type: string, data: unknown): LoggedEvent {
    const event = { id: this.nextId++, type, data };
    this.events.push(event);
    if (this.events.length > this.capacity) this.events.splice(0, this.events.length - this.capacity);
    this.emit('event', event);
    return event;
  }

  /** Events with id > `after`; `gap` is true when some of them were already dropped. */
  since(after: number): { events: LoggedEvent[]; gap: boolean } {
    const first = this.events[0]?.id ?? this.nextId;
    return { events: this.events.filter((e) => e.id > after), gap: after + 1 < first };
  }
}
