// shoalctl (docs/policy.md "CLI"): the admin API of storage-api from a shell.
// `run()` is the whole program, with its environment and streams passed in,
// so tests drive it in-process; bin/shoalctl.ts only wires process.* to it.
import { readFile } from 'node:fs/promises';
import { Command, CommanderError } from 'commander';
import {
  TOP_LIMIT_MAX as TOP_MAX,
  policyErrors,
  type ApprovalKind,
  type ApprovalList,
  type ApprovalView,
  type DoctorCheck,
  type ImportView,
  type PasskeyView,
  type TopTorrent,
} from '@shoal/policy';
import type { StoreStats as StatsView } from '@shoal/storage';
import type { DoctorStatus } from '@shoal/storage/doctor';
import { ROUTES } from '@shoal/storage-api-contract';
import { AdminClient } from './client.ts';
import { parseDuration } from './duration.ts';
import { ApiAnswerError, CliError } from './errors.ts';
import { parsePasskeyCsv, parseValueFile } from './files.ts';
import { addLinkCommands } from './links.ts';
import { addBanCommands } from './bans.ts';
import { formatTable } from './table.ts';

export interface Output {
  write(text: string): unknown;
}

export interface RunOptions {
  env: Readonly<Record<string, string | undefined>>;
  stdout: Output;
  stderr: Output;
}

interface GlobalOptions {
  url?: string | undefined;
  token?: string | undefined;
  json?: boolean;
  timeout: string;
}

const SKEW_WARN_MS = 1000;
const ADMIN = ROUTES.adminPrefix;
type Status = DoctorStatus;
const MARK: Record<Status, string> = { ok: 'ok  ', warn: 'WARN', fail: 'FAIL' };

/** The answers of the admin API (packages/policy/src/admin-routes.ts). */
interface TopView {
  torrents: TopTorrent[];
}
interface DoctorView {
  checks: DoctorCheck[];
  serverTimeMs: number;
}

function problemText(code: string): string {
  return code in policyErrors ? policyErrors[code as keyof typeof policyErrors].message : code;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function skewText(ms: number): string {
  return `${(Math.abs(ms) / 1000).toFixed(2)} s ${ms >= 0 ? 'ahead of' : 'behind'}`;
}

/** Runs shoalctl with `argv` (the arguments after the program name); resolves to the exit status. */
export async function run(argv: readonly string[], options: RunOptions): Promise<number> {
  const { env, stdout, stderr } = options;
  const out = (text: string): void => void stdout.write(text);
  const json = (value: unknown): void => out(`${JSON.stringify(value, null, 2)}\n`);
  let exitCode = 0;

  const program = new Command('shoalctl')
    .description(
      'Administer a Shoal tracker through storage-api: approval lists, passkeys, stats, doctor.',
    )
    // Before any .command(): subcommands inherit output, exit override and help settings.
    .exitOverride()
    .configureOutput({
      writeOut: (s) => void stdout.write(s),
      writeErr: (s) => void stderr.write(s),
      outputError: (s, write) => write(`${s.trimEnd()} [CLI_ERR_USAGE]\n`),
    })
    .showHelpAfterError('(shoalctl --help for usage)')
    .option('--url <url>', 'storage-api base URL, e.g. http://storage-api:8080 (env SHOAL_URL)')
    .option(
      '--token <token>',
      "storage-api's STORAGE_API_ADMIN_TOKEN (env SHOAL_ADMIN_TOKEN, which keeps it out of ps)",
    )
    .option('--json', 'print machine-readable JSON')
    .option('--timeout <duration>', 'give up on storage-api after this long (90s, 5m)', '30s');

  const opened: AdminClient[] = [];
  const client = (cmd: Command): { api: AdminClient; opts: GlobalOptions } => {
    const given = cmd.optsWithGlobals<GlobalOptions>();
    const opts = {
      ...given,
      url: given.url ?? env.SHOAL_URL,
      token: given.token ?? env.SHOAL_ADMIN_TOKEN,
    };
    if (opts.url === undefined || opts.url === '') {
      throw new CliError(
        'CLI_ERR_USAGE',
        'no storage-api URL: pass --url or set SHOAL_URL (e.g. http://127.0.0.1:8080)',
      );
    }
    let parsed: URL;
    try {
      parsed = new URL(opts.url);
    } catch {
      throw new CliError(
        'CLI_ERR_USAGE',
        `--url ${JSON.stringify(opts.url)} is not a URL (e.g. http://127.0.0.1:8080)`,
      );
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      throw new CliError(
        'CLI_ERR_USAGE',
        `--url must be http:// or https://, not ${parsed.protocol}`,
      );
    }
    if (opts.token === undefined || opts.token === '') {
      throw new CliError(
        'CLI_ERR_USAGE',
        "no admin token: set SHOAL_ADMIN_TOKEN (or pass --token) to storage-api's STORAGE_API_ADMIN_TOKEN",
      );
    }
    const timeoutMs = parseDuration(opts.timeout, '--timeout') * 1000;
    const api = new AdminClient({ url: opts.url, token: opts.token, timeoutMs });
    opened.push(api);
    return { api, opts };
  };

  const readText = async (file: string): Promise<string> => {
    try {
      return await readFile(file, 'utf8');
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      throw new CliError(
        'CLI_ERR_FILE',
        `cannot read ${file}: ${code === 'ENOENT' ? 'no such file' : (err as Error).message}`,
        { cause: err },
      );
    }
  };

  /** Server problems are by entry index; the operator wants file lines. */
  const importing = async <T>(lines: readonly number[], call: () => Promise<T>): Promise<T> => {
    try {
      return await call();
    } catch (err) {
      if (err instanceof ApiAnswerError && err.problems.length > 0) {
        const detail = err.problems
          .map(
            (p) =>
              `\n  line ${lines[p.index] ?? `?(entry ${p.index})`}: ${JSON.stringify(p.value)}: ${problemText(p.code)} [${p.code}]`,
          )
          .join('');
        throw new ApiAnswerError(err.status, err.code, `${err.message}${detail}`, err.problems);
      }
      throw err;
    }
  };

  const importSummary = (r: ImportView, what: string): string =>
    `${what}: ${r.added} added, ${r.updated} updated${r.removed > 0 ? `, ${r.removed} removed` : ''}\n`;

  // ------------------------------------------------------------ approval lists
  for (const kind of ['torrents', 'clients'] as const satisfies readonly ApprovalKind[]) {
    const what =
      kind === 'torrents'
        ? 'info hash (40 hex)'
        : 'peer_id prefix, e.g. -TR (after --: -- -XX0001)';
    const kindCmd = program
      .command(kind)
      .description(
        kind === 'torrents'
          ? 'torrent approval lists (info hashes)'
          : 'client approval lists (peer_id prefixes)',
      );
    for (const list of ['allow', 'deny'] as const satisfies readonly ApprovalList[]) {
      const name = `${kind} ${list}`;
      const base = `${ADMIN}/approval/${kind}/${list}`;
      const listCmd = kindCmd.command(list).description(`the ${list} list of ${kind}`);
      listCmd
        .command('add')
        .description(`add an entry to ${name}`)
        .argument('<value>', what)
        .option('--note <text>', 'a note kept with the entry (at most 256 characters)')
        .action(async (value: string, o: { note?: string }, cmd: Command) => {
          const { api, opts } = client(cmd);
          const r = await api.request<{ added: boolean }>(
            'PUT',
            `${base}/${encodeURIComponent(value)}`,
            o.note === undefined ? {} : { note: o.note },
          );
          if (opts.json) json(r.body);
          else
            out(
              r.body.added
                ? `added ${value} to ${name}\n`
                : `${value} was already on ${name}${o.note === undefined ? '' : ' (note updated)'}\n`,
            );
        });
      listCmd
        .command('remove')
        .alias('rm')
        .description(`remove an entry from ${name}`)
        .argument('<value>', what)
        .action(async (value: string, _o: unknown, cmd: Command) => {
          const { api, opts } = client(cmd);
          const r = await api.request<{ existed: boolean }>(
            'DELETE',
            `${base}/${encodeURIComponent(value)}`,
          );
          if (opts.json) json(r.body);
          else
            out(
              r.body.existed ? `removed ${value} from ${name}\n` : `${value} was not on ${name}\n`,
            );
        });
      listCmd
        .command('list')
        .alias('ls')
        .description(`print ${name}`)
        .action(async (_o: unknown, cmd: Command) => {
          const { api, opts } = client(cmd);
          const r = await api.request<{ entries: ApprovalView[] }>('GET', base);
          if (opts.json) return json(r.body);
          if (r.body.entries.length === 0) return out(`${name} is empty\n`);
          out(
            formatTable([
              [kind === 'torrents' ? 'INFO HASH' : 'PREFIX', 'ADDED', 'NOTE'],
              ...r.body.entries.map((e) => [e.value, e.addedAt, e.note ?? '']),
            ]),
          );
        });
      listCmd
        .command('import')
        .description(
          `add every entry of a file to ${name}: one value per line (optionally followed by a note), # comments and blank lines skipped`,
        )
        .argument('<file>', 'the file to import')
        .option('--replace', `also remove entries of ${name} that are not in the file`)
        .action(async (file: string, o: { replace?: boolean }, cmd: Command) => {
          const { api, opts } = client(cmd);
          const { entries, lines } = parseValueFile(await readText(file));
          const r = await importing(lines, () =>
            api.request<ImportView>('POST', `${base}/import`, {
              entries,
              replace: o.replace === true,
            }),
          );
          if (opts.json) json(r.body);
          else
            out(
              importSummary(
                r.body,
                `${name} import of ${entries.length} ${entries.length === 1 ? 'entry' : 'entries'}`,
              ),
            );
        });
    }
  }

  // ------------------------------------------------------------ passkeys
  const passkeys = program.command('passkeys').description('passkeys of a private tracker');
  passkeys
    .command('add')
    .description('create a passkey (random unless --passkey is given)')
    .option('--user <name>', 'who the passkey belongs to')
    .option('--ttl <duration>', 'expires after 90s, 30m, 12h, 30d (default: never)')
    .option('--expires-at <time>', 'expires at an ISO 8601 time (instead of --ttl)')
    .option('--passkey <key>', 'the passkey itself: 8-128 of [A-Za-z0-9_-]')
    .action(
      async (
        o: { user?: string; ttl?: string; expiresAt?: string; passkey?: string },
        cmd: Command,
      ) => {
        if (o.ttl !== undefined && o.expiresAt !== undefined)
          throw new CliError('CLI_ERR_USAGE', 'give --ttl or --expires-at, not both');
        const ttlSeconds = o.ttl === undefined ? undefined : parseDuration(o.ttl, '--ttl');
        const { api, opts } = client(cmd);
        const r = await api.request<PasskeyView>('POST', `${ADMIN}/passkeys`, {
          ...(o.passkey === undefined ? {} : { passkey: o.passkey }),
          ...(o.user === undefined ? {} : { user: o.user }),
          ...(ttlSeconds === undefined ? {} : { ttlSeconds }),
          ...(o.expiresAt === undefined ? {} : { expiresAt: o.expiresAt }),
        });
        if (opts.json) return json(r.body);
        out(
          formatTable([
            ['passkey', r.body.passkey],
            ['user', r.body.user ?? '-'],
            ['created', r.body.createdAt],
            ['expires', r.body.expiresAt ?? 'never'],
          ]),
        );
      },
    );
  passkeys
    .command('list')
    .alias('ls')
    .description('print every passkey')
    .action(async (_o: unknown, cmd: Command) => {
      const { api, opts } = client(cmd);
      const r = await api.request<{ passkeys: PasskeyView[] }>('GET', `${ADMIN}/passkeys`);
      if (opts.json) return json(r.body);
      if (r.body.passkeys.length === 0) return out('no passkeys\n');
      const now = r.receivedAt;
      out(
        formatTable([
          ['PASSKEY', 'USER', 'CREATED', 'EXPIRES'],
          ...r.body.passkeys.map((p) => [
            p.passkey,
            p.user ?? '-',
            p.createdAt,
            p.expiresAt === null
              ? 'never'
              : `${p.expiresAt}${Date.parse(p.expiresAt) <= now ? ' (expired)' : ''}`,
          ]),
        ]),
      );
    });
  passkeys
    .command('remove')
    .alias('rm')
    .description('delete a passkey (announces with it fail within POLICY_REFRESH_SECONDS)')
    .argument('<passkey>')
    .action(async (passkey: string, _o: unknown, cmd: Command) => {
      const { api, opts } = client(cmd);
      const r = await api.request<{ existed: boolean }>(
        'DELETE',
        `${ADMIN}/passkeys/${encodeURIComponent(passkey)}`,
      );
      if (opts.json) json(r.body);
      else
        out(r.body.existed ? `removed passkey ${passkey}\n` : `passkey ${passkey} did not exist\n`);
    });
  passkeys
    .command('import')
    .description(
      'add or update passkeys from a CSV file: passkey,user,expiresAt (header optional; expiresAt ISO 8601, empty = never)',
    )
    .argument('<file.csv>')
    .option('--replace', 'also delete passkeys that are not in the file')
    .action(async (file: string, o: { replace?: boolean }, cmd: Command) => {
      const { api, opts } = client(cmd);
      const { entries, lines } = parsePasskeyCsv(await readText(file));
      const r = await importing(lines, () =>
        api.request<ImportView>('POST', `${ADMIN}/passkeys/import`, {
          passkeys: entries,
          replace: o.replace === true,
        }),
      );
      if (opts.json) json(r.body);
      else out(importSummary(r.body, `passkeys import of ${plural(entries.length, 'passkey')}`));
    });

  addLinkCommands(program, { client, out, json, readText, importing, importSummary, admin: ADMIN });
  addBanCommands(program, { client, out, json, admin: ADMIN });

  // ------------------------------------------------------------ stats, top, doctor
  program
    .command('stats')
    .description('live torrents, seeders and leechers')
    .action(async (_o: unknown, cmd: Command) => {
      const { api, opts } = client(cmd);
      const r = await api.request<StatsView>('GET', `${ADMIN}/stats`);
      if (opts.json) return json(r.body);
      const { seeders: s, leechers: l } = r.body;
      out(
        formatTable(
          [
            ['', 'IPv4', 'IPv6', 'TOTAL'],
            ['torrents', '', '', String(r.body.torrents)],
            ['seeders', String(s.v4), String(s.v6), String(s.v4 + s.v6)],
            ['leechers', String(l.v4), String(l.v6), String(l.v4 + l.v6)],
            ['peers', String(s.v4 + l.v4), String(s.v6 + l.v6), String(s.v4 + s.v6 + l.v4 + l.v6)],
          ],
          ['left', 'right', 'right', 'right'],
        ),
      );
    });
  program
    .command('top')
    .description('the torrents with the most live peers')
    .option('-n, --limit <n>', `how many (1-${TOP_MAX})`, '10')
    .action(async (o: { limit: string }, cmd: Command) => {
      const n = /^\d{1,4}$/.test(o.limit) ? Number(o.limit) : Number.NaN;
      if (!(n >= 1 && n <= TOP_MAX))
        throw new CliError(
          'CLI_ERR_USAGE',
          `-n must be a whole number from 1 to ${TOP_MAX}, not ${JSON.stringify(o.limit)}`,
        );
      const { api, opts } = client(cmd);
      const r = await api.request<TopView>('GET', `${ADMIN}/top?limit=${n}`);
      if (opts.json) return json(r.body);
      if (r.body.torrents.length === 0) return out('no live torrents\n');
      out(
        formatTable(
          [
            ['INFO HASH', 'SEEDERS', 'LEECHERS', 'DOWNLOADED'],
            ...r.body.torrents.map((t) => [
              t.infoHash,
              String(t.seeders),
              String(t.leechers),
              String(t.downloaded),
            ]),
          ],
          ['left', 'right', 'right', 'right'],
        ),
      );
    });
  program
    .command('doctor')
    .description(
      'ask storage-api to check its stores (persistence, replication, eviction, migrations, clocks); exit 1 on any failure',
    )
    .action(async (_o: unknown, cmd: Command) => {
      const { api, opts } = client(cmd);
      const r = await api.request<DoctorView>('GET', `${ADMIN}/doctor`);
      const checks = Array.isArray(r.body?.checks) ? r.body.checks : undefined;
      if (checks === undefined || typeof r.body.serverTimeMs !== 'number') {
        throw new CliError(
          'CLI_ERR_BAD_ANSWER',
          `GET ${ADMIN}/doctor answered without checks and serverTimeMs`,
        );
      }
      // The server read its clock somewhere between our send and receive.
      const skewMs = r.body.serverTimeMs - (r.sentAt + r.receivedAt) / 2;
      const roundTrip = r.receivedAt - r.sentAt;
      const clock = {
        name: 'shoalctl clock',
        status:
          Math.abs(skewMs) > SKEW_WARN_MS + roundTrip / 2 ? ('warn' as const) : ('ok' as const),
        message: `storage-api's clock is ${skewText(skewMs)} this machine's (±${(roundTrip / 2000).toFixed(2)} s)`,
      };
      const all = [...checks, clock];
      if (all.some((c) => c.status === 'fail')) exitCode = 1;
      if (opts.json) return json({ ...r.body, clientSkewMs: Math.round(skewMs) });
      for (const c of all) out(`${MARK[c.status] ?? c.status}  ${c.name}: ${c.message}\n`);
      const count = (s: Status): number => all.filter((c) => c.status === s).length;
      out(
        `\n${plural(count('fail'), 'failure')}, ${plural(count('warn'), 'warning')}, ${count('ok')} ok\n`,
      );
    });

  try {
    await program.parseAsync([...argv], { from: 'user' });
    return exitCode;
  } catch (err) {
    return failed(err, stderr);
  } finally {
    await Promise.all(opened.map((api) => api.close()));
  }
}

function failed(err: unknown, stderr: Output): number {
  if (err instanceof CommanderError) {
    // --help / --version print and succeed; anything else commander refuses is usage.
    return err.code === 'commander.helpDisplayed' || err.code === 'commander.version' ? 0 : 2;
  }
  if (err instanceof CliError) {
    stderr.write(`error: ${err.message} [${err.code}]\n`);
    return err.exitCode;
  }
  if (err instanceof ApiAnswerError) {
    stderr.write(`error: ${err.message} [${err.code}]\n`);
    return 1;
  }
  const internal = new CliError(
    'CLI_ERR_INTERNAL',
    err instanceof Error ? err.message : String(err),
  );
  stderr.write(`error: ${internal.message} [${internal.code}]\n`);
  return 1;
}
