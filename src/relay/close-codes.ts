/**
 * Close codes of the relay (4xxx are mcp-box's own; reasons stay under 123 bytes). A WebSocket peer
 * gets them as its close frame; an InProcessTransport reports the same code and reason in
 * `closeInfo` (and 1000 'client closed' when its owner closed it), so both are read the same way.
 */
export const CLOSE_GOING_AWAY = 1001;
export const CLOSE_TOO_BIG = 1009;
/** The process ended (its exit record is in the server's failure record). */
export const CLOSE_PROCESS_EXITED = 4000;
/** Another client took this process over. */
export const CLOSE_TAKEN_OVER = 4001;
/** The process closed its stdout but is still running: no answer can come (requests in flight got an error). */
export const CLOSE_STDOUT_CLOSED = 4002;
/** The capability URL the client came through was revoked (a new one is in the server's record). */
export const CLOSE_CAPABILITY_REVOKED = 4003;
/** The process already has a client; attach again with takeover to replace it. */
export const CLOSE_ALREADY_ATTACHED = 4409;
