// Renders a configuration reference (docs/configuration.md) from the services'
// schemas: every key with its type, default, whether it is secret, which
// services read it and its `description`. Services hand their schemas in, so
// this package imports none of them (docs/conventions.md "Layout").
import { Kind, OptionalKind, type TObject, type TSchema } from '@sinclair/typebox';

export interface ServiceSchema {
  /** The service's name as operators know it (`announce-gateway`). */
  name: string;
  schema: TObject;
}

/** Keys defined once and composed into several services, listed together. */
export interface ConfigSection {
  title: string;
  /** Markdown paragraph under the title. */
  intro?: string;
  schema: TObject;
  /** Listed before the services' own tables (settings every service has). */
  first?: boolean;
}

export interface ConfigReference {
  /** Hand-written Markdown before the tables (title included). */
  header: string;
  /** Hand-written Markdown after the tables. */
  footer?: string;
  services: readonly ServiceSchema[];
  /** Shared fragments, each a table of its own; a service overriding a key lists it in its own table. */
  sections: readonly ConfigSection[];
}

interface Row {
  key: string;
  schema: TSchema;
  optional: boolean;
  services: string[];
}

/** The Markdown of the reference; a key without a description is an error, so none goes unexplained. */
export function renderConfigReference(ref: ConfigReference): string {
  const missing: string[] = [];
  const claimed = new Map<string, Set<string>>(); // service -> keys listed in a shared section
  const parts: string[] = [ref.header.trimEnd(), ''];

  const table = (title: string, intro: string | undefined, rows: Row[]): void => {
    if (rows.length === 0) return;
    parts.push(`## ${title}`, '');
    if (intro !== undefined) parts.push(intro.trim(), '');
    parts.push(
      '| Variable | Type | Default | Services | Description |',
      '| -------- | ---- | ------- | -------- | ----------- |',
    );
    for (const r of rows) {
      const description = r.schema.description;
      if (description === undefined || description.trim() === '') missing.push(r.key);
      parts.push(
        `| \`${r.key}\` | ${typeText(r.schema)} | ${defaultText(r.schema, r.optional)} | ${r.services.join(', ')} | ${cell(description ?? '')} |`,
      );
    }
    parts.push('');
  };

  const sectionRows = ref.sections.map((section) => {
    const rows: Row[] = [];
    for (const [key, schema] of Object.entries(section.schema.properties)) {
      const services = ref.services
        .filter((s) => sameProperty(s.schema, key, section.schema))
        .map((s) => s.name);
      if (services.length === 0) continue;
      for (const name of services) {
        const keys = claimed.get(name) ?? new Set<string>();
        keys.add(key);
        claimed.set(name, keys);
      }
      rows.push({ key, schema, optional: isOptional(section.schema, key), services });
    }
    return { section, rows };
  });

  const shared = (first: boolean): void => {
    for (const { section, rows } of sectionRows)
      if ((section.first ?? false) === first) table(section.title, section.intro, rows);
  };
  shared(true);
  for (const s of ref.services) {
    const keys = claimed.get(s.name) ?? new Set<string>();
    const rows = Object.entries(s.schema.properties)
      .filter(([key]) => !keys.has(key))
      .map(([key, schema]) => ({
        key,
        schema,
        optional: isOptional(s.schema, key),
        services: [s.name],
      }));
    table(s.name, undefined, rows);
  }
  shared(false);

  if (missing.length > 0)
    throw new Error(`config keys without a description: ${missing.join(', ')}`);
  if (ref.footer !== undefined) parts.push(ref.footer.trim(), '');
  return parts.join('\n');
}

function isOptional(object: TObject, key: string): boolean {
  const schema = object.properties[key];
  return schema?.[OptionalKind] === 'Optional' || !(object.required ?? []).includes(key);
}

/** The service reads `key` exactly as the shared section defines it (an override is its own row). */
function sameProperty(service: TObject, key: string, section: TObject): boolean {
  const a = service.properties[key];
  const b = section.properties[key];
  if (a === undefined || b === undefined) return false;
  return isOptional(service, key) === isOptional(section, key) && canonical(a) === canonical(b);
}

function canonical(schema: TSchema): string {
  return JSON.stringify(schema, (_key, value: unknown) =>
    value !== null && typeof value === 'object' && !Array.isArray(value)
      ? Object.fromEntries(Object.entries(value).sort(([x], [y]) => (x < y ? -1 : 1)))
      : value,
  );
}

function typeText(schema: TSchema): string {
  const secret = schema.secret === true ? ', **secret**' : '';
  return `${baseType(schema)}${secret}`;
}

function baseType(schema: TSchema): string {
  switch (schema[Kind]) {
    case 'Integer':
    case 'Number':
      return `${schema[Kind] === 'Integer' ? 'integer' : 'number'}${range(schema)}`;
    case 'Boolean':
      return 'boolean';
    case 'Array':
      return `list of ${baseType(schema.items as TSchema)} (comma-separated)`;
    case 'Union': {
      const members = schema.anyOf as TSchema[];
      if (members.every((m) => m[Kind] === 'Literal'))
        return members.map((m) => `\`${String(m.const)}\``).join(' \\| ');
      return members.map(baseType).join(' or ');
    }
    case 'Literal':
      return `\`${String(schema.const)}\``;
    default:
      return typeof schema.type === 'string' ? schema.type : 'value';
  }
}

function range(schema: TSchema): string {
  const min = schema.minimum as number | undefined;
  const max = schema.maximum as number | undefined;
  if (min !== undefined && max !== undefined) return ` ${min}..${max}`;
  if (min !== undefined) return ` ≥ ${min}`;
  if (max !== undefined) return ` ≤ ${max}`;
  return '';
}

function defaultText(schema: TSchema, optional: boolean): string {
  const value: unknown = schema.default;
  if (value === undefined) return optional ? 'unset' : '**required**';
  if (Array.isArray(value)) return value.length === 0 ? 'empty' : `\`${value.join(',')}\``;
  if (value === '') return 'empty';
  const text =
    typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean'
      ? String(value)
      : JSON.stringify(value);
  return `\`${text}\``;
}

/** Markdown table cell text: one line, pipes escaped. */
function cell(text: string): string {
  return text
    .replace(/\s*\n\s*/g, ' ')
    .replace(/\|/g, '\\|')
    .trim();
}
