// storage-api's load as its batch answers report it (docs/load.md "What
// storage-api reports"), gathered between two samples of the gateway's load
// figure.
import type { Logger } from 'pino';
import type { LoadReport } from '@shoal/protocol';

export interface StorageLoadSample {
  /** Mean of max(latency, queue) over the reports since the last take; 0 with none. */
  load: number;
  /** Reports since the last take. */
  reports: number;
  /** false once an answer came without a report (an older storage-api) until one comes with it; false before any answer. */
  reporting: boolean;
}

export class StorageLoadReports {
  readonly #log: Logger;
  #sum = 0;
  #count = 0;
  #reporting = false;
  #warned = false;

  constructor(log: Logger) {
    this.#log = log;
  }

  add(report: LoadReport | undefined): void {
    if (report === undefined) {
      if (!this.#warned) {
        this.#warned = true;
        this.#log.warn(
          'storage-api sends no load report (an older release): the announce interval stays at ANNOUNCE_INTERVAL_SECONDS, since that storage-api keeps peers for its own PEER_LIFETIME_SECONDS only (docs/load.md)',
        );
      }
      this.#reporting = false;
      return;
    }
    this.#reporting = true;
    this.#sum += Math.max(report.latency, report.queue);
    this.#count++;
  }

  /** The sample since the last take, and a fresh start. */
  take(): StorageLoadSample {
    const reports = this.#count;
    const load = reports === 0 ? 0 : this.#sum / reports;
    this.#sum = 0;
    this.#count = 0;
    return { load, reports, reporting: this.#reporting };
  }
}
