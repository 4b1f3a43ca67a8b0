// A certificate authority made in the test, with Debian's openssl CLI: a CA
// certificate the clients trust (curl --cacert, aria2 --ca-certificate, Node's
// `ca`) and server certificates it signs, each with its own serial so a test
// can tell which one a connection was served. And the way the kubelet
// updates a mounted Secret (a new timestamped directory, then an atomic swap
// of the `..data` symlink the files point through), to rotate them as
// cert-manager does in a cluster.
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { baseEnv, runBounded } from './processes.ts';

export interface IssuedCert {
  certFile: string;
  keyFile: string;
  cert: string;
  key: string;
  /** Upper-case hex, as openssl and Node's X509Certificate print it. */
  serial: string;
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

async function openssl(args: string[]): Promise<void> {
  await runBounded('openssl', args, {
    name: `openssl ${args[0] ?? ''}`,
    env: baseEnv(),
    timeoutMs: 30_000,
  });
}

export class TestCa {
  readonly dir: string;
  /** The CA certificate (PEM) clients are told to trust. */
  readonly caFile: string;
  readonly #caKey: string;
  #issued = 0;

  private constructor(dir: string) {
    this.dir = dir;
    this.caFile = join(dir, 'ca.crt');
    this.#caKey = join(dir, 'ca.key');
  }

  /** A new CA in `dir` (which must exist), valid two days. */
  static async create(dir: string, name = 'Shoal test CA'): Promise<TestCa> {
    const ca = new TestCa(dir);
    await openssl(
      ['req', '-x509', ...EC, '-days', '2', '-subj', `/CN=${name}`].concat([
        '-keyout',
        ca.#caKey,
        '-out',
        ca.caFile,
      ]),
    );
    return ca;
  }

  /** A server certificate for `ips` and `dns` names, signed by this CA. */
  async issue(opts: { ips?: string[]; dns?: string[]; days?: number } = {}): Promise<IssuedCert> {
    const n = ++this.#issued;
    const base = join(this.dir, `server-${n}`);
    const keyFile = `${base}.key`;
    const certFile = `${base}.crt`;
    const ext = `${base}.ext`;
    const san = [
      ...(opts.ips ?? ['127.0.0.1']).map((ip) => `IP:${ip}`),
      ...(opts.dns ?? ['localhost']).map((d) => `DNS:${d}`),
    ];
    await writeFile(
      ext,
      [
        `subjectAltName=${san.join(',')}`,
        'basicConstraints=critical,CA:FALSE',
        'keyUsage=critical,digitalSignature',
        'extendedKeyUsage=serverAuth',
        '',
      ].join('\n'),
    );
    await openssl(
      ['req', '-new', ...EC, '-subj', `/CN=shoal-test-${n}`].concat([
        '-keyout',
        keyFile,
        '-out',
        `${base}.csr`,
      ]),
    );
    // First byte 0x10-0x7f: positive, and printed without a leading zero by openssl and Node alike.
    const bytes = randomBytes(8);
    bytes[0] = 0x10 + (bytes[0]! % 0x70);
    const serial = bytes.toString('hex').toUpperCase();
    await openssl(
      ['x509', '-req', '-in', `${base}.csr`, '-CA', this.caFile, '-CAkey', this.#caKey].concat([
        '-set_serial',
        `0x${serial}`,
        '-days',
        String(opts.days ?? 2),
        '-extfile',
        ext,
        '-out',
        certFile,
      ]),
    );
    return {
      certFile,
      keyFile,
      cert: await readFile(certFile, 'utf8'),
      key: await readFile(keyFile, 'utf8'),
      serial,
    };
  }
}

/**
 * A directory laid out as the kubelet lays out a mounted Secret:
 * `tls.crt` -> `..data/tls.crt`, `..data` -> `..<version>`. `write` puts a
 * new version beside the old one, swaps `..data` with one rename and removes
 * the old version, as its AtomicWriter does.
 */
export class SecretMount {
  readonly dir: string;
  #version = 0;

  constructor(dir: string) {
    this.dir = dir;
  }

  file(name: string): string {
    return join(this.dir, name);
  }

  async write(files: Record<string, string>): Promise<void> {
    const version = `..${Date.now()}_${++this.#version}`;
    await mkdir(join(this.dir, version));
    for (const [name, text] of Object.entries(files))
      await writeFile(join(this.dir, version, name), text);
    const data = join(this.dir, '..data');
    const old = await readlink(data).catch(() => undefined);
    await symlink(version, join(this.dir, '..data_tmp'));
    await rename(join(this.dir, '..data_tmp'), data);
    for (const name of Object.keys(files))
      await symlink(join('..data', name), join(this.dir, name)).catch((err: unknown) => {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      });
    if (old !== undefined) await rm(join(this.dir, old), { recursive: true, force: true });
  }
}
