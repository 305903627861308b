/** The OpenAPI 3.1 document of the HTTP API, generated from the routes and their zod schemas. */
import { z } from 'zod';
import { MCP_BOX_VERSION } from '../version.js';

export interface RouteDoc {
  method: string;
  path: string;
  summary: string;
  body?: z.ZodType;
  public?: boolean;
  /** Content type of a 200 answer other than JSON. */
  produces?: string;
}

const errorEnvelope = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: { code: { type: 'string' }, message: { type: 'string' }, phase: { type: 'string' }, details: { type: 'object' } },
    },
  },
};

export function openApiDocument(routes: RouteDoc[]): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const params = [...r.path.matchAll(/\{(\w+)\}/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } }));
    const op: Record<string, unknown> = {
      summary: r.summary,
      ...(params.length === 0 ? {} : { parameters: params }),
      ...(r.public === true ? { security: [] } : {}),
      ...(r.body === undefined ? {} : { requestBody: { required: true, content: { 'application/json': { schema: z.toJSONSchema(r.body, { io: 'input', unrepresentable: 'any' }) } } } }),
      responses: {
        '200': { description: 'OK', content: { [r.produces ?? 'application/json']: { schema: r.produces === undefined ? { type: 'object' } : { type: 'string' } } } },
        default: { description: 'Error envelope', content: { 'application/json': { schema: { $ref: '#/components/schemas/ErrorEnvelope' } } } },
      },
    };
    (paths[r.path] ??= {})[r.method.toLowerCase()] = op;
  }
  return {
    openapi: '3.1.0',
    info: { title: 'mcp-box', version: MCP_BOX_VERSION, description: 'Sandboxed supervisor for stdio MCP servers.' },
    servers: [{ url: '/' }],
    security: [{ bearer: [] }],
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } }, schemas: { ErrorEnvelope: errorEnvelope } },
    paths,
  };
}
