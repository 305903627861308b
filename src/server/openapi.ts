/**
 * The OpenAPI 3.1 document of the HTTP API, generated from the routes and their zod schemas.
 * Errors every route can answer are the `default` envelope; those that depend on the shape of a
 * route are listed by status, as shared `components.responses`: 400 where a path parameter may
 * be malformed (bad percent-encoding) or a body invalid, and 413 wherever the server reads a
 * body. The server reads (and size-limits) the body of every POST, PUT and PATCH before the
 * handler, with or without a schema, so those are the routes that take one.
 */
import { z } from 'zod';
import { PHASES } from '../errors/box-error.js';
import { MCP_BOX_VERSION } from '../version.js';

export interface RouteDoc {
  method: string;
  path: string;
  summary: string;
  body?: z.ZodType;
  public?: boolean;
  /** Content type of a 200 answer other than JSON. */
  produces?: string;
  /** Optional query parameters (JSON Schema of each value). */
  query?: { name: string; schema: Record<string, unknown> }[];
}

const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH']);

const errorResponse = (description: string): Record<string, unknown> => ({
  description,
  content: { 'application/json': { schema: { $ref: '#/components/schemas/ErrorEnvelope' } } },
});

const sharedResponses = {
  BadRequest: errorResponse(
    'INVALID_ARGUMENT: a malformed path (a path parameter that is not valid percent-encoding), ' +
      'a bad query parameter, or an invalid body (not JSON, or not its schema)',
  ),
  PayloadTooLarge: errorResponse(
    'PAYLOAD_TOO_LARGE: the body is larger than server.maxBodyBytes; the connection is closed after the answer',
  ),
};

const errorEnvelope = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: {
        code: { type: 'string' },
        message: { type: 'string' },
        phase: { type: 'string', enum: [...PHASES] },
        details: { type: 'object' },
      },
    },
  },
};

export function openApiDocument(routes: RouteDoc[]): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const params = [...r.path.matchAll(/\{(\w+)\}/g)].map((m) => ({
      name: m[1],
      in: 'path',
      required: true,
      schema: { type: 'string' },
    }));
    const query = (r.query ?? []).map((q) => ({ name: q.name, in: 'query', required: false, schema: q.schema }));
    const readsBody = BODY_METHODS.has(r.method.toUpperCase());
    const op: Record<string, unknown> = {
      summary: r.summary,
      ...(params.length + query.length === 0 ? {} : { parameters: [...params, ...query] }),
      ...(r.public === true ? { security: [] } : {}),
      ...(r.body === undefined
        ? {}
        : {
            requestBody: {
              required: true,
              content: {
                'application/json': { schema: z.toJSONSchema(r.body, { io: 'input', unrepresentable: 'any' }) },
              },
            },
          }),
      responses: {
        '200': {
          description: 'OK',
          content: {
            [r.produces ?? 'application/json']: {
              schema: r.produces === undefined ? { type: 'object' } : { type: 'string' },
            },
          },
        },
        ...(params.length > 0 || query.length > 0 || readsBody
          ? { '400': { $ref: '#/components/responses/BadRequest' } }
          : {}),
        ...(readsBody ? { '413': { $ref: '#/components/responses/PayloadTooLarge' } } : {}),
        default: errorResponse('Error envelope'),
      },
    };
    (paths[r.path] ??= {})[r.method.toLowerCase()] = op;
  }
  return {
    openapi: '3.1.0',
    info: { title: 'mcp-box', version: MCP_BOX_VERSION, description: 'Sandboxed supervisor for stdio MCP servers.' },
    servers: [{ url: '/' }],
    security: [{ bearer: [] }],
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: { ErrorEnvelope: errorEnvelope },
      responses: sharedResponses,
    },
    paths,
  };
}
