// shoalctl bans (docs/policy.md "Abuse control"): the time-limited bans of
// source addresses, the gateways' own and operators', through storage-api's
// /v1/admin/bans.
import type { Command } from 'commander';
import { parseDuration } from './duration.ts';
import type { LinkCommandDeps } from './links.ts';
import { formatTable } from './table.ts';

interface BanView {
  address: string;
  reason: string;
  until: string;
  addedAt: string;
  note?: string;
}

export function addBanCommands(
  program: Command,
  deps: Pick<LinkCommandDeps, 'client' | 'out' | 'json' | 'admin'>,
): void {
  const { client, out, json } = deps;
  const base = `${deps.admin}/bans`;
  const bans = program
    .command('bans')
    .description('time-limited bans of source addresses (IPv4, or an IPv6 /64)');
  bans
    .command('list')
    .alias('ls')
    .description('print the bans in force')
    .action(async (_o: unknown, cmd: Command) => {
      const { api, opts } = client(cmd);
      const r = await api.request<{ bans: BanView[] }>('GET', base);
      if (opts.json) return json(r.body);
      if (r.body.bans.length === 0) return out('no bans\n');
      out(
        formatTable([
          ['ADDRESS', 'REASON', 'UNTIL', 'NOTE'],
          ...r.body.bans.map((b) => [b.address, b.reason, b.until, b.note ?? '']),
        ]),
      );
    });
  bans
    .command('add')
    .description(
      'ban an address for a while (every gateway with ABUSE_BANS within POLICY_REFRESH_SECONDS)',
    )
    .argument('<address>', 'an IPv4 or IPv6 address (IPv6: its /64 is banned)')
    .requiredOption('--ttl <duration>', 'how long: 90s, 30m, 12h, 7d')
    .option('--note <text>', 'why')
    .action(async (address: string, o: { ttl: string; note?: string }, cmd: Command) => {
      const ttlSeconds = parseDuration(o.ttl, '--ttl');
      const { api, opts } = client(cmd);
      const r = await api.request<{ added: boolean; address: string; until: string }>(
        'PUT',
        `${base}/${encodeURIComponent(address)}`,
        { ttlSeconds, ...(o.note === undefined ? {} : { note: o.note }) },
      );
      if (opts.json) json(r.body);
      else out(`banned ${r.body.address} until ${r.body.until}\n`);
    });
  bans
    .command('remove')
    .alias('rm')
    .description('lift the ban of an address')
    .argument('<address>')
    .action(async (address: string, _o: unknown, cmd: Command) => {
      const { api, opts } = client(cmd);
      const r = await api.request<{ existed: boolean }>(
        'DELETE',
        `${base}/${encodeURIComponent(address)}`,
      );
      if (opts.json) json(r.body);
      else out(r.body.existed ? `lifted the ban of ${address}\n` : `${address} was not banned\n`);
    });
}
