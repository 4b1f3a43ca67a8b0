// The HTTPS tracker (docs/tls.md) with real clients: curl announces and
// scrapes with the test CA and is refused without it, two unmodified aria2
// clients exchange a file through a torrent whose tracker URL is https, and
// after a Secret-style rotation of the mounted files a new curl connection
// is served the new certificate. Plain HTTP keeps answering on its own port.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeBencode, isDict, type BDict } from '@shoal/testing/bencode';
import { HarnessError } from '@shoal/testing/errors';
import { startGateway, type GatewayProcess } from '@shoal/testing/launcher';
import { baseEnv, spawnManaged, waitFor } from '@shoal/testing/processes';
import { SecretMount, TestCa, type IssuedCert } from '@shoal/testing/test-ca';
import { percentEncodeBytes, randomInfoHash } from '@shoal/testing/tracker-client';
import { Aria2Swarm } from './harness/aria2-transfer.ts';
import { tail } from './harness/aria2.ts';

interface CurlResult {
  code: number | null;
  body: Buffer;
  /** curl -v's account of the handshake (the served certificate's subject among it). */
  trace: string;
}

let dir = '';

/** curl GET `url`, trusting `ca` when given; never throws on curl's own failure. */
async function curl(url: string, ca?: string): Promise<CurlResult> {
  const out = join(dir, `curl-${process.hrtime.bigint()}.out`);
  const proc = spawnManaged(
    'curl',
    [
      '-sS',
      '-v',
      '--max-time',
      '10',
      '-o',
      out,
      ...(ca === undefined ? [] : ['--cacert', ca]),
      url,
    ],
    { name: 'curl', env: baseEnv() },
  );
  const status = await proc.waitForExit(20_000);
  const body = await readFile(out).catch(() => Buffer.alloc(0));
  return { code: status.code, body, trace: proc.stderr.join('\n') };
}

function dictOf(body: Buffer): BDict {
  const { value } = decodeBencode(body);
  if (!isDict(value)) throw new HarnessError('HARNESS_ERR_BAD_REPLY', 'not a dictionary');
  return value;
}

describe('HTTPS tracker with real clients', () => {
  let ca: TestCa;
  let mount: SecretMount;
  let first: IssuedCert;
  let gateway: GatewayProcess | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shoal-https-'));
    ca = await TestCa.create(dir);
    first = await ca.issue();
    mount = new SecretMount(await mkdtemp(join(dir, 'secret-')));
    await mount.write({ 'tls.crt': first.cert, 'tls.key': first.key });
    gateway = await startGateway({
      TLS_CERT_FILE: mount.file('tls.crt'),
      TLS_KEY_FILE: mount.file('tls.key'),
      // Only the directory watch can see the rotation below in time.
      TLS_RELOAD_CHECK_SECONDS: '3600',
    });
  }, 60_000);

  afterAll(async () => {
    await gateway?.stop();
    if (dir !== '') await rm(dir, { recursive: true, force: true });
  });

  const tracker = (): GatewayProcess => {
    if (gateway === undefined) throw new HarnessError('HARNESS_ERR_EXITED', 'no gateway');
    return gateway;
  };

  it('answers curl over https with the CA, refuses the handshake without it, and keeps plain http', async () => {
    const hash = percentEncodeBytes(randomInfoHash());
    const query = `info_hash=${hash}&peer_id=-CU0001-aaaaaaaaaaaa&port=6881&uploaded=0&downloaded=0&left=0`;
    const ok = await curl(tracker().httpsUrl(`/announce?${query}`), ca.caFile);
    expect(ok.code, ok.trace).toBe(0);
    expect(dictOf(ok.body).complete).toBe(1);
    expect(ok.trace).toContain('subject: CN=shoal-test-1');

    const scrape = await curl(tracker().httpsUrl(`/scrape?info_hash=${hash}`), ca.caFile);
    expect(scrape.code, scrape.trace).toBe(0);
    const files = dictOf(scrape.body).files;
    expect(isDict(files) ? Object.values(files)[0] : undefined).toMatchObject({ complete: 1 });

    // curl's 60: the peer certificate cannot be authenticated with known CA certificates.
    const untrusted = await curl(tracker().httpsUrl(`/announce?${query}`));
    expect(untrusted.code).toBe(60);

    const plain = await curl(`http://127.0.0.1:${tracker().httpPort}/announce?${query}`);
    expect(plain.code, plain.trace).toBe(0);
    expect(dictOf(plain.body).complete).toBe(1);
  }, 60_000);

  it('an aria2 leecher downloads a byte-identical file from a seeder found through an https tracker', async () => {
    const swarm = await Aria2Swarm.create(join(dir, 'aria2'), undefined, {
      caCertificate: ca.caFile,
    });
    try {
      const torrent = await swarm.torrent('https', tracker().httpsUrl('/announce'));
      const scrapeUrl = tracker().httpsUrl(
        `/scrape?info_hash=${percentEncodeBytes(torrent.infoHash)}`,
      );
      await swarm.seed(torrent, {
        what: 'the tracker to count the seeder (scraped with curl over https)',
        counted: async () => {
          const r = await curl(scrapeUrl, ca.caFile);
          const files = r.code === 0 ? dictOf(r.body).files : undefined;
          const entry = isDict(files) ? Object.values(files)[0] : undefined;
          return isDict(entry) && entry.complete === 1;
        },
        diagnostics: () => tracker().tail(20),
      });
      const { status, log } = await swarm.leech('leecher', torrent);
      expect(status.code, tail(log)).toBe(0);
      expect(await swarm.payloadSha256('leecher')).toBe(swarm.seederSha256);
      // The torrent's only tracker is the TLS port, which answers nothing but TLS:
      // aria2 loaded the test CA and its announces were answered there.
      expect(log).toContain('1 certificate(s) were imported');
      expect(log).toMatch(/GET \/announce\?info_hash=.*event=started/);
    } finally {
      await swarm.stop();
    }
  }, 150_000);

  it('serves a new curl connection the rotated certificate without a restart', async () => {
    const pid = tracker().pid;
    const second = await ca.issue();
    await mount.write({ 'tls.crt': second.cert, 'tls.key': second.key });
    const url = tracker().httpsUrl('/');
    await waitFor(
      'a new connection to be served the rotated certificate',
      async () => (await curl(url, ca.caFile)).trace.includes('subject: CN=shoal-test-2'),
      10_000,
      200,
    );
    expect(tracker().pid).toBe(pid);
    const metrics = await (await fetch(tracker().adminUrl('/metrics'))).text();
    expect(metrics).toContain('shoal_tls_reloads_total{outcome="changed"} 1');
  }, 60_000);
});
