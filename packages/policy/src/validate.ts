// Checks of policy input, one definition each, used by the repository (which
// refuses bad input whoever calls it) and by the admin routes (which check
// HTTP bodies before converting them). Every refusal is a PolicyError.
import { PolicyError, isPolicyError, type PolicyErrorCode } from './errors.ts';
import {
  CLIENT_PREFIX,
  INFO_HASH_HEX,
  NOTE_MAX,
  PASSKEY,
  type ApprovalKind,
  type ApprovalList,
} from './types.ts';

/** One bad entry of a bulk import: its index, code and (shortened) value. */
export type Problem = { index: number; code: PolicyErrorCode; value: string };

export function checkList(
  kind: unknown,
  list: unknown,
): { kind: ApprovalKind; list: ApprovalList } {
  if ((kind === 'torrents' || kind === 'clients') && (list === 'allow' || list === 'deny'))
    return { kind, list };
  throw new PolicyError('POLICY_ERR_BAD_LIST', `${String(kind)}/${String(list)}`);
}

/** An approval value as stored in views and snapshots: a lowercase info hash, or the prefix as given. */
export function checkApprovalValue(kind: ApprovalKind, value: unknown): string {
  if (kind === 'torrents') {
    if (typeof value !== 'string' || !INFO_HASH_HEX.test(value))
      throw new PolicyError('POLICY_ERR_BAD_INFO_HASH');
    return value.toLowerCase();
  }
  if (typeof value !== 'string' || !CLIENT_PREFIX.test(value))
    throw new PolicyError('POLICY_ERR_BAD_CLIENT_PREFIX');
  return value;
}

export function checkPasskey(passkey: unknown): string {
  if (typeof passkey !== 'string' || !PASSKEY.test(passkey))
    throw new PolicyError('POLICY_ERR_BAD_PASSKEY');
  return passkey;
}

/** A note or user name: absent, or a string of at most NOTE_MAX characters. */
export function optionalText(value: unknown, what: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length > NOTE_MAX)
    throw new PolicyError(
      'POLICY_ERR_BAD_ENTRY',
      `${what} must be a string of at most ${NOTE_MAX} characters`,
    );
  return value;
}

/**
 * A plain object with only the `allowed` fields. Absent (undefined or null)
 * is an empty object (an HTTP body may be omitted) unless `required`.
 */
export function fields(
  raw: unknown,
  allowed: readonly string[],
  what = 'body',
  required = false,
): Record<string, unknown> {
  if ((raw === undefined || raw === null) && !required) return {};
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new PolicyError('POLICY_ERR_BAD_ENTRY', `${what} must be a JSON object`);
  const record = raw as Record<string, unknown>;
  const unknown = Object.keys(record).filter((k) => !allowed.includes(k));
  if (unknown.length > 0)
    throw new PolicyError(
      'POLICY_ERR_BAD_ENTRY',
      `unknown field ${JSON.stringify(unknown[0])} (allowed: ${allowed.join(', ')})`,
    );
  return record;
}

/** Runs `check` on every entry; throws one PolicyError listing every bad one, so nothing is written. */
export function validateAll<T>(list: unknown, what: string, check: (entry: unknown) => T): T[] {
  if (!Array.isArray(list))
    throw new PolicyError('POLICY_ERR_BAD_ENTRY', `${what} must be an array`);
  const problems: Problem[] = [];
  const out: T[] = [];
  list.forEach((entry: unknown, index) => {
    try {
      out.push(check(entry));
    } catch (err) {
      if (!isPolicyError(err)) throw err;
      problems.push({ index, code: err.code, value: describe(entry) });
    }
  });
  const first = problems[0];
  if (first !== undefined)
    throw new PolicyError(
      first.code,
      `${problems.length} of ${list.length} ${what} rejected, nothing written`,
      { problems },
    );
  return out;
}

/** A bad entry as the admin typed it, shortened (problems echo it so they can find it). */
function describe(entry: unknown): string {
  const record =
    typeof entry === 'object' && entry !== null ? (entry as Record<string, unknown>) : {};
  const v = record.value ?? record.passkey ?? entry;
  const text = typeof v === 'string' ? v : (JSON.stringify(v) ?? String(v));
  return text.length > 64 ? `${text.slice(0, 61)}...` : text;
}

/** A stored JSON object, or undefined when the text is not one (junk written by hand). */
export function parseJson(text: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === 'object' && v !== null && !Array.isArray(v)
      ? (v as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}
