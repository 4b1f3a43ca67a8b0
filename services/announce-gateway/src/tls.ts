// The HTTPS tracker's certificate and key, read from files and re-read when
// they change (docs/tls.md). cert-manager renews a certificate by updating a
// Secret; the kubelet then swaps the mounted directory's `..data` symlink, so
// the files' own inodes never change: watching the directories that hold
// them sees the swap, and a periodic re-read covers a watch that stopped
// (a remount). A pair that does not load (a half-written file, a key that
// does not match) is refused and the running one kept. setSecureContext()
// applies to handshakes from then on; connections already open keep theirs.
import { X509Certificate } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { createSecureContext, type Server as TlsServer } from 'node:tls';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';

export interface TlsFiles {
  certFile: string;
  keyFile: string;
}

export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  /** The leaf certificate's notAfter, ms since the epoch. */
  notAfterMs: number;
}

export type TlsReloadOutcome = 'changed' | 'failed';

export interface TlsMetrics {
  reloaded(outcome: TlsReloadOutcome): void;
  loaded(material: TlsMaterial): void;
}

/** Registered whether TLS is on or not, so dashboards and the metric catalogue see one set. */
export function createTlsMetrics(registry: Registry): TlsMetrics {
  const reloads = new Counter({
    name: 'shoal_tls_reloads_total',
    help: 'Certificate reloads of the HTTPS tracker: changed (a new pair is served), failed (the pair did not load; the running one is kept).',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  const table = { changed: reloads.labels('changed'), failed: reloads.labels('failed') };
  for (const series of Object.values(table)) series.inc(0);
  const notAfter = new Gauge({
    name: 'shoal_tls_certificate_expiry_timestamp_seconds',
    help: "The served certificate's notAfter, seconds since the epoch (0 while HTTPS is off).",
    registers: [registry],
  });
  notAfter.set(0);
  return {
    reloaded: (outcome) => table[outcome].inc(),
    loaded: (material) => notAfter.set(Math.floor(material.notAfterMs / 1000)),
  };
}

/** Checks that `cert` and `key` make a TLS context (the key matches the leaf) and reads the leaf's expiry. */
export function tlsMaterial(cert: Buffer, key: Buffer): TlsMaterial {
  createSecureContext({ cert, key });
  return { cert, key, notAfterMs: Date.parse(new X509Certificate(cert).validTo) };
}

/** The pair as it is at boot; throws (with the file named) when it does not load. */
export function readTlsMaterial(files: TlsFiles): TlsMaterial {
  let cert: Buffer;
  let key: Buffer;
  try {
    cert = readFileSync(files.certFile);
    key = readFileSync(files.keyFile);
    return tlsMaterial(cert, key);
  } catch (err) {
    throw new Error(
      `cannot load TLS_CERT_FILE ${files.certFile} with TLS_KEY_FILE ${files.keyFile}: ${String(err)}`,
      { cause: err },
    );
  }
}

/** After a file event, wait this long for the rest of an update (a cert then its key) before reading. */
const SETTLE_MS = 100;

export interface TlsReloaderOptions {
  files: TlsFiles;
  server: TlsServer;
  /** What the server was created with. */
  initial: TlsMaterial;
  checkSeconds: number;
  metrics: TlsMetrics;
  logger: Logger;
}

export class TlsReloader {
  readonly #o: TlsReloaderOptions;
  #current: TlsMaterial;
  /** The last pair refused, so a periodic re-read does not log the same failure again. */
  #refused: { cert: Buffer; key: Buffer } | undefined;
  #watchers: FSWatcher[] = [];
  #timer: NodeJS.Timeout | undefined;
  #settle: NodeJS.Timeout | undefined;
  #running: Promise<unknown> = Promise.resolve();
  #closed = false;

  constructor(options: TlsReloaderOptions) {
    this.#o = options;
    this.#current = options.initial;
    options.metrics.loaded(options.initial);
  }

  get current(): TlsMaterial {
    return this.#current;
  }

  start(): void {
    const { files, logger } = this.#o;
    for (const dir of new Set([dirname(files.certFile), dirname(files.keyFile)])) {
      try {
        const watcher = watch(dir, { persistent: false }, () => this.#soon());
        watcher.on('error', (err) => logger.warn({ err, dir }, 'TLS directory watch stopped'));
        this.#watchers.push(watcher);
      } catch (err) {
        logger.warn(
          { err, dir },
          'cannot watch the TLS directory; relying on the periodic re-read',
        );
      }
    }
    this.#timer = setInterval(() => void this.check(), this.#o.checkSeconds * 1000);
    this.#timer.unref();
  }

  #soon(): void {
    if (this.#closed) return;
    clearTimeout(this.#settle);
    this.#settle = setTimeout(() => void this.check(), SETTLE_MS);
    this.#settle.unref();
  }

  /** Re-reads both files and serves them if they changed and load; one check at a time. */
  check(): Promise<'changed' | 'unchanged' | 'failed'> {
    const next = this.#running.then(() => this.#check());
    this.#running = next.catch(() => undefined);
    return next;
  }

  async #check(): Promise<'changed' | 'unchanged' | 'failed'> {
    if (this.#closed) return 'unchanged';
    const { files, logger, metrics } = this.#o;
    let cert: Buffer;
    let key: Buffer;
    try {
      [cert, key] = await Promise.all([readFile(files.certFile), readFile(files.keyFile)]);
    } catch (err) {
      // Between the kubelet's steps a file can be missing for a moment.
      logger.warn({ err }, 'cannot read the TLS files; keeping the served certificate');
      metrics.reloaded('failed');
      return 'failed';
    }
    if (cert.equals(this.#current.cert) && key.equals(this.#current.key)) return 'unchanged';
    let material: TlsMaterial;
    try {
      material = tlsMaterial(cert, key);
      this.#o.server.setSecureContext({ cert, key });
    } catch (err) {
      const seen = this.#refused?.cert.equals(cert) === true && this.#refused.key.equals(key);
      this.#refused = { cert, key };
      if (!seen) {
        logger.warn(
          { err },
          'the new TLS certificate and key do not load; keeping the served pair',
        );
        metrics.reloaded('failed');
      }
      return 'failed';
    }
    this.#current = material;
    this.#refused = undefined;
    metrics.reloaded('changed');
    metrics.loaded(material);
    logger.info(
      { notAfter: new Date(material.notAfterMs).toISOString() },
      'TLS certificate reloaded',
    );
    return 'changed';
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    clearTimeout(this.#settle);
    for (const w of this.#watchers) w.close();
    this.#watchers = [];
    await this.#running;
  }
}
