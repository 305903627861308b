import { describe, expect, it } from 'vitest';
import { serverEnv } from './server-env.js';

describe('serverEnv', () => {
  const activation = {
    PATH: '/box/id-1/workspace/node_modules/.bin:/usr/bin:/bin',
    NODE_OPTIONS: '--use-openssl-ca',
    SSL_CERT_FILE: '/box/id-1/ca.pem',
  };
  const prefix = ['/box/id-1/workspace/node_modules/.bin'];

  it('is the activation when the server sets nothing', () => {
    expect(serverEnv(activation, prefix, {})).toEqual(activation);
  });

  it("puts the server's own PATH after the install's prefix", () => {
    expect(serverEnv(activation, prefix, { PATH: '/opt/tool/bin:/usr/bin' }).PATH).toBe(
      '/box/id-1/workspace/node_modules/.bin:/opt/tool/bin:/usr/bin',
    );
  });

  it("keeps the sandbox's --use-openssl-ca in front of the server's own NODE_OPTIONS", () => {
    const env = serverEnv(activation, prefix, { NODE_OPTIONS: '--max-old-space-size=256' });
    expect(env.NODE_OPTIONS).toBe('--use-openssl-ca --max-old-space-size=256');
  });

  it("takes the server's NODE_OPTIONS as they are when no CA bundle is staged", () => {
    const { NODE_OPTIONS: _, ...noCa } = activation;
    expect(serverEnv(noCa, prefix, { NODE_OPTIONS: '--trace-warnings' }).NODE_OPTIONS).toBe('--trace-warnings');
  });

  it('lets every other variable of the server win', () => {
    expect(serverEnv(activation, prefix, { SSL_CERT_FILE: '/own.pem', API_KEY: 'k' })).toMatchObject({
      SSL_CERT_FILE: '/own.pem',
      API_KEY: 'k',
    });
  });
});
