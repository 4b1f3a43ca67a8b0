// The HTTPS tracker over real TLS sockets, its certificate in a directory laid
// out as the kubelet mounts a Secret: a rotation is picked up by the watch
// alone (the periodic re-read is an hour away), a keep-alive connection opened
// before it keeps working on its old session, and a new connection is served
// the new certificate. A pair that does not load is refused and the running
// one kept.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SecretMount, TestCa, type IssuedCert } from '@shoal/testing/test-ca';
import { waitFor } from '@shoal/testing/processes';
import { announceQuery, bdict, hashOf, makeGateway, type TestGateway } from '../test/support.ts';

/** One TLS connection sending HTTP/1.1 requests one after another. */
class KeepAliveClient {
  readonly socket: TLSSocket;
  #buffer = '';
  #waiting: (() => void) | undefined;

  private constructor(socket: TLSSocket) {
    this.socket = socket;
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      this.#buffer += chunk;
      this.#waiting?.();
    });
  }

  static open(port: number, ca: string): Promise<KeepAliveClient> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port, ca }, () =>
        resolve(new KeepAliveClient(socket)),
      );
      socket.once('error', reject);
    });
  }

  get serial(): string {
    return this.socket.getPeerCertificate().serialNumber;
  }

  /** Sends GET `path` and resolves with the status and body of the answer. */
  async get(path: string): Promise<{ status: number; body: Buffer }> {
    this.socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n`);
    for (;;) {
      const end = this.#buffer.indexOf('\r\n\r\n');
      const length = /content-length: (\d+)/i.exec(this.#buffer.slice(0, end));
      if (end !== -1 && length !== null && this.#buffer.length >= end + 4 + Number(length[1])) {
        const body = this.#buffer.slice(end + 4, end + 4 + Number(length[1]));
        const status = Number(this.#buffer.slice(9, 12));
        this.#buffer = this.#buffer.slice(end + 4 + body.length);
        return { status, body: Buffer.from(body, 'latin1') };
      }
      if (this.socket.destroyed) throw new Error('connection closed');
      await new Promise<void>((resolve) => (this.#waiting = resolve));
    }
  }

  close(): void {
    this.socket.destroy();
  }
}

/** The serial a fresh connection is served. */
async function servedSerial(port: number, ca: string): Promise<string> {
  const client = await KeepAliveClient.open(port, ca);
  try {
    return client.serial;
  } finally {
    client.close();
  }
}

describe('HTTPS tracker with certificate rotation', () => {
  let dir = '';
  let ca: TestCa;
  let caPem: string;
  let first: IssuedCert;
  let mount: SecretMount;
  let t: TestGateway;
  let port = 0;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shoal-tls-'));
    ca = await TestCa.create(dir);
    caPem = await readFile(ca.caFile, 'utf8');
    first = await ca.issue();
    mount = new SecretMount(await mkdtemp(join(dir, 'secret-')));
    await mount.write({ 'tls.crt': first.cert, 'tls.key': first.key });
    t = makeGateway({
      UDP_ENABLED: 'false',
      HTTPS_PORT: '0',
      TLS_CERT_FILE: mount.file('tls.crt'),
      TLS_KEY_FILE: mount.file('tls.key'),
      TLS_RELOAD_CHECK_SECONDS: '3600',
    });
    port = (await t.gateway.listen()).httpsPort ?? 0;
  }, 60_000);

  afterAll(async () => {
    await t.close();
    await rm(dir, { recursive: true, force: true });
  });

  const announce = (client: KeepAliveClient, n: number) =>
    client.get(`/announce?${announceQuery({ infoHash: hashOf('tls'), port: 6000 + n })}`);

  it('answers announces over TLS with the mounted certificate', async () => {
    const client = await KeepAliveClient.open(port, caPem);
    try {
      expect(client.serial).toBe(first.serial);
      const answer = await announce(client, 1);
      expect(answer.status).toBe(200);
      expect(bdict(answer.body).complete).toBeDefined();
    } finally {
      client.close();
    }
  });

  it('keeps a keep-alive connection through a rotation and serves new connections the new certificate', async () => {
    const client = await KeepAliveClient.open(port, caPem);
    try {
      expect((await announce(client, 2)).status).toBe(200);
      const second = await ca.issue();
      await mount.write({ 'tls.crt': second.cert, 'tls.key': second.key });
      await waitFor(
        'a new connection to see the new certificate',
        async () => {
          return (await servedSerial(port, caPem)) === second.serial;
        },
        10_000,
      );
      // The connection opened before the swap is the same socket, still answering.
      const after = await announce(client, 3);
      expect(after.status).toBe(200);
      expect(bdict(after.body).incomplete).toBe(3);
      expect(client.serial).toBe(first.serial);
      expect(t.gateway.tls?.current.cert.toString()).toBe(second.cert);
      const metrics = await t.registry.getSingleMetricAsString('shoal_tls_reloads_total');
      expect(metrics).toContain('shoal_tls_reloads_total{outcome="changed"} 1');
    } finally {
      client.close();
    }
  });

  it('refuses a key that does not match its certificate and keeps serving the running pair', async () => {
    const served = t.gateway.tls?.current.cert.toString();
    const a = await ca.issue();
    const b = await ca.issue();
    await mount.write({ 'tls.crt': a.cert, 'tls.key': b.key });
    expect(await t.gateway.tls?.check()).toBe('failed');
    expect(t.gateway.tls?.current.cert.toString()).toBe(served);
    const client = await KeepAliveClient.open(port, caPem);
    try {
      expect((await announce(client, 4)).status).toBe(200);
    } finally {
      client.close();
    }
    const metrics = await t.registry.getSingleMetricAsString('shoal_tls_reloads_total');
    expect(metrics).toContain('shoal_tls_reloads_total{outcome="failed"} 1');
  });
});
