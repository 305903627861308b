/**
 * The states of a managed server, in lifecycle order: the one list. The supervisor's `ServerState`
 * type, the API's `?state=` filter, the OpenAPI document and the metrics derive from it.
 */
export const SERVER_STATES = ['pending', 'starting', 'ready', 'backoff', 'failed', 'stopped'] as const;
export type ServerStateName = (typeof SERVER_STATES)[number];

export const isServerState = (value: string): value is ServerStateName => (SERVER_STATES as readonly string[]).includes(value);
