import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, SECRET, Type, isConfigError, loadConfig } from './index.ts';

const schema = Type.Object({
  HOST: Type.String({ default: '::' }),
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 6969 }),
  HTTP_ENABLED: Type.Boolean({ default: true }),
  ROUTES: Type.Array(Type.String({ pattern: '^/' }), { default: ['/announce'] }),
  LOG_LEVEL: Type.Union([Type.Literal('info'), Type.Literal('debug')], { default: 'info' }),
  SECRET_HEX: Type.Optional(Type.String({ pattern: '^[0-9a-f]{32}$', ...SECRET })),
});

const dir = mkdtempSync(join(tmpdir(), 'shoal-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function yamlFile(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

function violationsOf(fn: () => unknown): Array<{ key: string; message: string }> {
  try {
    fn();
  } catch (err) {
    expect(isConfigError(err)).toBe(true);
    expect((err as ConfigError).code).toBe('CONFIG_ERR_INVALID');
    return [...(err as ConfigError).violations];
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('applies defaults when nothing is set', () => {
    const config = loadConfig(schema, { env: {}, argv: [] });
    expect(config).toEqual({
      HOST: '::',
      PORT: 6969,
      HTTP_ENABLED: true,
      ROUTES: ['/announce'],
      LOG_LEVEL: 'info',
    });
  });

  it('coerces environment strings to numbers, booleans and comma-separated arrays', () => {
    const config = loadConfig(schema, {
      env: { PORT: '0', HTTP_ENABLED: 'false', ROUTES: ' /announce, /a/b ,', LOG_LEVEL: 'debug' },
      argv: [],
    });
    expect(config.PORT).toBe(0);
    expect(config.HTTP_ENABLED).toBe(false);
    expect(config.ROUTES).toEqual(['/announce', '/a/b']);
    expect(config.LOG_LEVEL).toBe('debug');
  });

  it('treats an empty environment variable as unset', () => {
    expect(loadConfig(schema, { env: { PORT: '' }, argv: [] }).PORT).toBe(6969);
  });

  it('reads a YAML file named by SHOAL_CONFIG_FILE, and the environment overrides it', () => {
    const file = yamlFile('a.yaml', 'PORT: 7000\nHOST: 127.0.0.1\nROUTES: [/x, /y]\n');
    const config = loadConfig(schema, { env: { SHOAL_CONFIG_FILE: file, HOST: '::1' }, argv: [] });
    expect(config.PORT).toBe(7000);
    expect(config.HOST).toBe('::1');
    expect(config.ROUTES).toEqual(['/x', '/y']);
  });

  it('takes the file from --config, which wins over SHOAL_CONFIG_FILE', () => {
    const a = yamlFile('b.yaml', 'PORT: 1\n');
    const b = yamlFile('c.yaml', 'PORT: 2\n');
    expect(loadConfig(schema, { env: { SHOAL_CONFIG_FILE: a }, argv: ['--config', b] }).PORT).toBe(
      2,
    );
    expect(
      loadConfig(schema, { env: { SHOAL_CONFIG_FILE: a }, argv: [`--config=${b}`] }).PORT,
    ).toBe(2);
  });

  it('lists every violation at once, each with its variable name, including unknown file keys', () => {
    const file = yamlFile('bad.yaml', 'PORTT: 80\nHTTP_ENABLED: maybe\n');
    const violations = violationsOf(() =>
      loadConfig(schema, {
        env: { PORT: 'abc', ROUTES: '/ok,bad', LOG_LEVEL: 'loud', SECRET_HEX: 'not-hex-at-all' },
        file,
        argv: [],
      }),
    );
    const keys = violations.map((v) => v.key).sort();
    expect(keys).toEqual(['HTTP_ENABLED', 'LOG_LEVEL', 'PORT', 'PORTT', 'ROUTES', 'SECRET_HEX']);
    expect(violations.find((v) => v.key === 'LOG_LEVEL')?.message).toContain('"info", "debug"');
    expect(violations.find((v) => v.key === 'PORT')?.message).toContain('"abc"');
  });

  it('puts every variable name in the error message and never echoes a secret', () => {
    try {
      loadConfig(schema, { env: { PORT: '70000', SECRET_HEX: 'hunter2' }, argv: [] });
      expect.unreachable();
    } catch (err) {
      const message = (err as Error).message;
      expect(message).toMatch(/PORT:/);
      expect(message).toMatch(/SECRET_HEX:/);
      expect(message).not.toContain('hunter2');
    }
  });

  it('reports an unreadable or malformed file as a violation', () => {
    expect(
      violationsOf(() =>
        loadConfig(schema, { env: {}, file: join(dir, 'missing.yaml'), argv: [] }),
      )[0]?.key,
    ).toBe('SHOAL_CONFIG_FILE');
    const list = yamlFile('list.yaml', '- 1\n- 2\n');
    expect(violationsOf(() => loadConfig(schema, { env: {}, file: list, argv: [] }))[0]?.key).toBe(
      'SHOAL_CONFIG_FILE',
    );
  });

  it('runs per-key refinements and cross-field checks', () => {
    const violations = violationsOf(() =>
      loadConfig(schema, {
        env: { HOST: 'nowhere', PORT: 'x' },
        argv: [],
        refine: {
          HOST: (h) => (h === 'nowhere' ? 'is not an address' : undefined),
          PORT: () => 'never reached',
        },
      }),
    );
    expect(violations.map((v) => v.key)).toEqual(['PORT', 'HOST']);
    expect(violations[0]?.message).toContain('"x"');
    expect(violations[1]?.message).toBe('is not an address');
    const cross = violationsOf(() =>
      loadConfig(schema, {
        env: {},
        argv: [],
        check: (c) => (c.PORT > 1024 ? [{ key: 'PORT', message: 'too high' }] : []),
      }),
    );
    expect(cross).toEqual([{ key: 'PORT', message: 'too high' }]);
  });

  it('returns a deeply frozen object', () => {
    const config = loadConfig(schema, { env: {}, argv: [] });
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.ROUTES)).toBe(true);
    expect(() => {
      (config as { PORT: number }).PORT = 1;
    }).toThrow(TypeError);
  });
});
