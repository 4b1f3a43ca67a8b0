// shoalctl links (docs/policy.md "Hybrid torrents"): the linked swarms of
// hybrid torrents, through storage-api's /v1/admin/links.
import type { Command } from 'commander';
import type { ImportView, LinkView } from '@shoal/policy';
import type { AdminClient } from './client.ts';
import { contentLines, type Parsed } from './files.ts';
import { formatTable } from './table.ts';

export interface LinkCommandDeps {
  client: (cmd: Command) => { api: AdminClient; opts: { json?: boolean } };
  out: (text: string) => void;
  json: (value: unknown) => void;
  readText: (file: string) => Promise<string>;
  importing: <T>(lines: readonly number[], call: () => Promise<T>) => Promise<T>;
  importSummary: (r: ImportView, what: string) => string;
  admin: string;
}

/** A links file: `<first> <second> [note]` per line, # comments and blank lines skipped. */
export function parseLinkFile(
  text: string,
): Parsed<{ first: string; second: string; note?: string }> {
  const entries: Array<{ first: string; second: string; note?: string }> = [];
  const lines: number[] = [];
  for (const { line, text: t } of contentLines(text)) {
    const [first = '', second = '', ...rest] = t.split(/\s+/);
    const note = rest.join(' ');
    entries.push(note === '' ? { first, second } : { first, second, note });
    lines.push(line);
  }
  return { entries, lines };
}

export function addLinkCommands(program: Command, deps: LinkCommandDeps): void {
  const { client, out, json } = deps;
  const base = `${deps.admin}/links`;
  const links = program
    .command('links')
    .description('linked swarms of hybrid torrents (v1 and v2 info hashes share one swarm)');
  links
    .command('add')
    .description("link two hashes: announces and scrapes of either use the first one's swarm")
    .argument('<first>', 'the v1 info hash (40 hex)')
    .argument('<second>', 'the v2 info hash, truncated to 20 bytes (40 hex)')
    .option('--note <text>', 'a note kept with the link')
    .action(async (first: string, second: string, o: { note?: string }, cmd: Command) => {
      const { api, opts } = client(cmd);
      const r = await api.request<{ added: boolean }>(
        'PUT',
        `${base}/${encodeURIComponent(first)}/${encodeURIComponent(second)}`,
        o.note === undefined ? {} : { note: o.note },
      );
      if (opts.json) json(r.body);
      else out(r.body.added ? `linked ${second} to ${first}\n` : `${first} was already linked\n`);
    });
  links
    .command('remove')
    .alias('rm')
    .description('remove the link a hash belongs to (either hash)')
    .argument('<hash>', 'either hash of the link')
    .action(async (hash: string, _o: unknown, cmd: Command) => {
      const { api, opts } = client(cmd);
      const r = await api.request<{ existed: boolean }>(
        'DELETE',
        `${base}/${encodeURIComponent(hash)}`,
      );
      if (opts.json) json(r.body);
      else out(r.body.existed ? `removed the link of ${hash}\n` : `${hash} was not linked\n`);
    });
  links
    .command('list')
    .alias('ls')
    .description('print every link')
    .action(async (_o: unknown, cmd: Command) => {
      const { api, opts } = client(cmd);
      const r = await api.request<{ links: LinkView[] }>('GET', base);
      if (opts.json) return json(r.body);
      if (r.body.links.length === 0) return out('no links\n');
      out(
        formatTable([
          ['FIRST (SWARM)', 'SECOND', 'ADDED', 'SOURCE', 'NOTE'],
          ...r.body.links.map((l) => [
            l.first,
            l.second,
            l.addedAt,
            l.learned ? 'learned' : 'imported',
            l.note ?? '',
          ]),
        ]),
      );
    });
  links
    .command('import')
    .description('add every link of a file: "<first> <second> [note]" per line, # comments skipped')
    .argument('<file>', 'the file to import')
    .option('--replace', 'also remove links that are not in the file')
    .action(async (file: string, o: { replace?: boolean }, cmd: Command) => {
      const { api, opts } = client(cmd);
      const { entries, lines } = parseLinkFile(await deps.readText(file));
      const r = await deps.importing(lines, () =>
        api.request<ImportView>('POST', `${base}/import`, {
          links: entries,
          replace: o.replace === true,
        }),
      );
      if (opts.json) json(r.body);
      else
        out(
          deps.importSummary(
            r.body,
            `links import of ${entries.length} ${entries.length === 1 ? 'link' : 'links'}`,
          ),
        );
    });
}
