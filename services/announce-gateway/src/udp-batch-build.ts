// Compiles the UDP batching addon (native/udp_batch.c, docs/udp-batch.md) at
// install: `node src/udp-batch-build.ts`, the gateway package's install
// script. Node-API headers come from the npm package node-api-headers, the
// compiler is the system's `cc` (CC overrides it); nothing is downloaded.
// It never fails the install: when the build fails the reason goes to
// native/build/why.txt, the gateway logs it at boot and serves UDP with
// node:dgram.
import { execFileSync } from 'node:child_process';
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const native = fileURLToPath(new URL('../native/', import.meta.url));
const out = `${native}build/`;

export function buildUdpBatch(): { ok: true } | { ok: false; why: string } {
  mkdirSync(out, { recursive: true });
  rmSync(`${out}why.txt`, { force: true });
  try {
    if (process.platform !== 'linux')
      throw new Error(`recvmmsg/sendmmsg are Linux calls, not ${process.platform}'s`);
    const { include_dir: include } = createRequire(import.meta.url)('node-api-headers') as {
      include_dir: string;
    };
    const tmp = `${out}udp_batch.node.${process.pid}`;
    execFileSync(
      process.env['CC'] ?? 'cc',
      [
        '-O2',
        '-Wall',
        '-shared',
        '-fPIC',
        '-pthread',
        '-I',
        include,
        '-o',
        tmp,
        `${native}udp_batch.c`,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    renameSync(tmp, `${out}udp_batch.node`);
    return { ok: true };
  } catch (err) {
    rmSync(`${out}udp_batch.node`, { force: true });
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    const why = `udp_batch addon not built: ${stderr || (err instanceof Error ? err.message : String(err))}`;
    writeFileSync(`${out}why.txt`, `${why}\n`);
    return { ok: false, why };
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const result = buildUdpBatch();
  // An install goes on without the addon: the gateway falls back to node:dgram.
  console.log(
    result.ok ? 'udp_batch addon built' : `${result.why.split('\n')[0]} (UDP uses node:dgram)`,
  );
}
