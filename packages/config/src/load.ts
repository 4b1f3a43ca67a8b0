// Boot-time config: one TypeBox schema per service whose property names are
// the environment variable names (UPPER_SNAKE, units in the name). Values come
// from an optional YAML file, then the environment; strings are coerced by the
// schema's types; every problem is reported in one ConfigError (docs/conventions.md
// "Config"). The result is deeply frozen and nothing reads process.env later.
import { readFileSync } from 'node:fs';
import { Kind, type Static, type TObject, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { parse as parseYaml } from 'yaml';
import { ConfigError, type ConfigViolation } from './errors.ts';

/** Environment variable naming the YAML file; `--config FILE` on argv wins over it. */
export const CONFIG_FILE_ENV = 'SHOAL_CONFIG_FILE';

export type DeepReadonly<T> = T extends (infer U)[]
  ? readonly DeepReadonly<U>[]
  : T extends Buffer
    ? T
    : T extends object
      ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
      : T;

export type LoadedConfig<T extends TObject> = DeepReadonly<Static<T>>;

export interface LoadConfigOptions<T extends TObject> {
  /** Defaults to process.env, read once here. Empty strings count as unset. */
  env?: Readonly<Record<string, string | undefined>>;
  /** YAML file path; overrides `--config` and SHOAL_CONFIG_FILE. */
  file?: string;
  /** Command-line arguments (without node and script); defaults to process.argv.slice(2). */
  argv?: readonly string[];
  /**
   * Checks TypeBox cannot express (CIDR syntax, hex secrets), per key. Each
   * runs only when its key passed the schema; returns a problem or undefined.
   */
  refine?: { [K in keyof Static<T>]?: (value: Static<T>[K]) => string | undefined };
  /** Cross-field checks, run when every key is individually valid. */
  check?: (config: Static<T>) => ConfigViolation[];
}

/** Marks a property whose value must never be echoed in an error (secrets). */
export const SECRET = { secret: true } as const;

export function loadConfig<T extends TObject>(
  schema: T,
  options: LoadConfigOptions<T> = {},
): LoadedConfig<T> {
  const env = options.env ?? process.env;
  const argv = options.argv ?? process.argv.slice(2);
  const violations: ConfigViolation[] = [];
  const keys = Object.keys(schema.properties);

  const filePath =
    options.file ?? configFileFromArgv(argv, violations) ?? nonEmpty(env[CONFIG_FILE_ENV]);
  const fromFile = filePath === undefined ? {} : readYamlFile(filePath, keys, violations);

  const raw: Record<string, unknown> = {};
  for (const key of keys) {
    const propSchema = schema.properties[key];
    if (propSchema === undefined) continue;
    const envValue = nonEmpty(env[key]);
    const value = envValue ?? fromFile[key];
    if (value !== undefined) raw[key] = coerce(propSchema, value);
  }

  const withDefaults = Value.Default(schema, raw) as Record<string, unknown>;
  const failed = new Set<string>();
  for (const err of Value.Errors(schema, withDefaults)) {
    const key = err.path.split('/')[1] ?? '(root)';
    if (failed.has(key)) continue;
    failed.add(key);
    violations.push({
      key,
      message: describe(err.schema, err.message, err.value, schema.properties[key]),
    });
  }

  const refine = options.refine as
    Record<string, ((v: unknown) => string | undefined) | undefined> | undefined;
  if (refine !== undefined) {
    for (const key of keys) {
      const fn = refine[key];
      if (fn === undefined || failed.has(key) || withDefaults[key] === undefined) continue;
      const problem = fn(withDefaults[key]);
      if (problem !== undefined) {
        failed.add(key);
        violations.push({ key, message: problem });
      }
    }
  }

  if (violations.length === 0 && options.check !== undefined) {
    violations.push(...options.check(withDefaults));
  }
  if (violations.length > 0) throw new ConfigError('CONFIG_ERR_INVALID', violations);
  return deepFreeze(withDefaults) as LoadedConfig<T>;
}

/** Where a service's values come from; tests pass `env`, `argv` or `file`, main.ts nothing. */
export type ConfigSources = Pick<LoadConfigOptions<TObject>, 'env' | 'argv' | 'file'>;

/** A service's `loadXConfig`: its schema with its own checks, loaded from the given sources. */
export function configLoader<T extends TObject>(
  schema: T,
  rules: Pick<LoadConfigOptions<T>, 'refine' | 'check'> = {},
): (sources?: ConfigSources) => LoadedConfig<T> {
  return (sources = {}) => loadConfig(schema, { ...sources, ...rules });
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

function configFileFromArgv(
  argv: readonly string[],
  violations: ConfigViolation[],
): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--config') {
      const next = argv[i + 1];
      if (next === undefined || next.startsWith('--')) {
        violations.push({ key: '--config', message: 'needs a file path' });
        return undefined;
      }
      return next;
    }
    if (arg?.startsWith('--config=') === true) return arg.slice('--config='.length);
  }
  return undefined;
}

function readYamlFile(
  path: string,
  keys: readonly string[],
  violations: ConfigViolation[],
): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(path, 'utf8'));
  } catch (err) {
    violations.push({
      key: CONFIG_FILE_ENV,
      message: `cannot read ${path}: ${(err as Error).message}`,
    });
    return {};
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    violations.push({
      key: CONFIG_FILE_ENV,
      message: `${path} must be a mapping of setting names to values`,
    });
    return {};
  }
  const known = new Set(keys);
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(doc)) {
    if (!known.has(key)) violations.push({ key, message: `unknown setting in ${path}` });
    else out[key] = value;
  }
  return out;
}

const NUMBER_TEXT = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;
const TRUE_TEXT = new Set(['true', '1', 'yes', 'on']);
const FALSE_TEXT = new Set(['false', '0', 'no', 'off']);

/** Turns env text into the schema's type; leaves anything it cannot convert for the validator to report. */
function coerce(schema: TSchema, value: unknown): unknown {
  switch (schema[Kind]) {
    case 'Number':
    case 'Integer':
      return toNumber(value);
    case 'Boolean':
      return toBoolean(value);
    case 'Literal': {
      const want: unknown = schema.const;
      if (typeof want === 'number') return toNumber(value);
      if (typeof want === 'boolean') return toBoolean(value);
      return value;
    }
    case 'Array': {
      const items = schema.items as TSchema;
      const list =
        typeof value === 'string'
          ? value
              .split(',')
              .map((s) => s.trim())
              .filter((s) => s !== '')
          : value;
      return Array.isArray(list) ? list.map((item: unknown) => coerce(items, item)) : list;
    }
    case 'Union': {
      for (const member of schema.anyOf as TSchema[]) {
        const converted = coerce(member, value);
        if (Value.Check(member, converted)) return converted;
      }
      return value;
    }
    default:
      return value;
  }
}

function toNumber(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  const text = value.trim();
  return NUMBER_TEXT.test(text) ? Number(text) : value;
}

function toBoolean(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  const text = value.trim().toLowerCase();
  if (TRUE_TEXT.has(text)) return true;
  if (FALSE_TEXT.has(text)) return false;
  return value;
}

function describe(
  failing: TSchema,
  message: string,
  value: unknown,
  property: TSchema | undefined,
): string {
  const hidden = property?.secret === true;
  const got =
    value === undefined
      ? 'missing'
      : hidden
        ? 'got a hidden value'
        : `got ${JSON.stringify(value)}`;
  if (
    failing[Kind] === 'Union' &&
    (failing.anyOf as TSchema[]).every((m) => m[Kind] === 'Literal')
  ) {
    const allowed = (failing.anyOf as TSchema[]).map((m) => JSON.stringify(m.const)).join(', ');
    return `must be one of ${allowed} (${got})`;
  }
  if (value === undefined) return 'is required';
  return `${message.toLowerCase()} (${got})`;
}

function deepFreeze<V>(value: V): V {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
