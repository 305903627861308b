import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { openApiDocument, type RouteDoc } from './openapi.js';

type Responses = Record<string, { $ref?: string; description?: string }>;
interface Doc {
  paths: Record<string, Record<string, { responses: Responses }>>;
  components: {
    responses: Record<string, { description: string; content: Record<string, { schema: { $ref: string } }> }>;
  };
}

const routes: RouteDoc[] = [
  { method: 'GET', path: '/healthz', summary: 'live', public: true },
  { method: 'GET', path: '/v1/servers/{name}', summary: 'one' },
  { method: 'POST', path: '/v1/servers', summary: 'add', body: z.object({ name: z.string() }) },
  { method: 'POST', path: '/v1/servers/{name}/restart', summary: 'restart' },
];
const doc = openApiDocument(routes) as unknown as Doc;
const responses = (path: string, method: string): Responses => doc.paths[path]?.[method]?.responses ?? {};

describe('openApiDocument: error responses', () => {
  it(
    'lists 413 PAYLOAD_TOO_LARGE on every route that reads ' +
      'a body (POST, with or without a schema), and not on GETs',
    () => {
      expect(responses('/v1/servers', 'post')['413']).toEqual({ $ref: '#/components/responses/PayloadTooLarge' });
      expect(responses('/v1/servers/{name}/restart', 'post')['413']).toEqual({
        $ref: '#/components/responses/PayloadTooLarge',
      });
      expect(responses('/v1/servers/{name}', 'get')['413']).toBeUndefined();
      expect(responses('/healthz', 'get')['413']).toBeUndefined();
    },
  );

  it('lists 400 where a path parameter may be malformed or a body invalid, and not on a plain GET', () => {
    expect(responses('/v1/servers/{name}', 'get')['400']).toEqual({ $ref: '#/components/responses/BadRequest' });
    expect(responses('/v1/servers', 'post')['400']).toEqual({ $ref: '#/components/responses/BadRequest' });
    expect(responses('/v1/servers/{name}/restart', 'post')['400']).toEqual({
      $ref: '#/components/responses/BadRequest',
    });
    expect(responses('/healthz', 'get')['400']).toBeUndefined();
  });

  it(
    'the shared responses are the error envelope, named by ' + 'their code, and every route keeps its default envelope',
    () => {
      for (const name of ['BadRequest', 'PayloadTooLarge']) {
        expect(doc.components.responses[name]?.content['application/json']?.schema).toEqual({
          $ref: '#/components/schemas/ErrorEnvelope',
        });
      }
      expect(doc.components.responses.PayloadTooLarge?.description).toMatch(/^PAYLOAD_TOO_LARGE\b/);
      expect(doc.components.responses.BadRequest?.description).toMatch(/^INVALID_ARGUMENT\b/);
      for (const r of routes)
        expect(responses(r.path, r.method.toLowerCase()).default?.description).toBe('Error envelope');
    },
  );
});
