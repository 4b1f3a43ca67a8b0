// Loads the bittorrent-tracker npm client for HTTP/UDP interop tests.
// Its WebRTC dependency (webrtc-polyfill -> node-datachannel) needs a native
// addon that an install with scripts ignored never builds, and the client
// imports it at load time even when only http:// and udp:// trackers are
// used. A module hook answers that import with "no WebRTC", which the client
// supports (simple-peer's WEBRTC_SUPPORT = false).
import { registerHooks } from 'node:module';
import type ClientClass from 'bittorrent-tracker/client';
import type { AnnounceOptions, ScrapeEvent, UpdateEvent } from 'bittorrent-tracker/client';
import { HarnessError } from '@shoal/testing/errors';

const noWebRtc =
  'data:text/javascript,export const RTCPeerConnection = undefined, RTCSessionDescription = undefined, RTCIceCandidate = undefined;';

let hooked = false;

export async function loadTrackerClient(): Promise<typeof ClientClass> {
  if (!hooked) {
    hooked = true;
    registerHooks({
      resolve(specifier, context, nextResolve) {
        if (specifier === 'webrtc-polyfill') return { url: noWebRtc, shortCircuit: true };
        return nextResolve(specifier, context);
      },
    });
  }
  const mod = await import('bittorrent-tracker/client');
  return mod.default;
}

export interface ClientAnnounce {
  update: UpdateEvent;
  /** "ip:port" of every peer the tracker returned. */
  peers: string[];
}

type Client = InstanceType<typeof ClientClass>;
type AnnounceVerb = 'start' | 'update' | 'complete' | 'stop';

/**
 * Sends one announce and resolves with its 'update' event and the 'peer'
 * events that came with it (the client emits them right after 'update', in
 * the same tick). Rejects on 'warning'/'error' (tracker failures) or timeout.
 */
export function announceWith(
  client: Client,
  verb: AnnounceVerb,
  opts: AnnounceOptions,
  timeoutMs = 5_000,
): Promise<ClientAnnounce> {
  return new Promise((resolve, reject) => {
    const peers: string[] = [];
    const onPeer = (addr: string): void => {
      peers.push(addr);
    };
    const cleanup = (): void => {
      clearTimeout(timer);
      client.off('update', onUpdate);
      client.off('peer', onPeer);
      client.off('warning', onFail);
      client.off('error', onFail);
    };
    const onUpdate = (update: UpdateEvent): void => {
      // The peer events follow synchronously in the same handler.
      setImmediate(() => {
        cleanup();
        resolve({ update, peers });
      });
    };
    const onFail = (err: Error): void => {
      cleanup();
      reject(
        new HarnessError('HARNESS_ERR_BAD_REPLY', `bittorrent-tracker client: ${err.message}`, {
          cause: err,
        }),
      );
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(
        new HarnessError('HARNESS_ERR_TIMEOUT', `no answer to ${verb} within ${timeoutMs} ms`),
      );
    }, timeoutMs);
    client.on('update', onUpdate);
    client.on('peer', onPeer);
    client.on('warning', onFail);
    client.on('error', onFail);
    client[verb](opts);
  });
}

/** Scrapes the client's own torrent and resolves with the 'scrape' event. */
export function scrapeWith(client: Client, timeoutMs = 5_000): Promise<ScrapeEvent> {
  return new Promise((resolve, reject) => {
    const cleanup = (): void => {
      clearTimeout(timer);
      client.off('scrape', onScrape);
      client.off('warning', onFail);
      client.off('error', onFail);
    };
    const onScrape = (data: ScrapeEvent): void => {
      cleanup();
      resolve(data);
    };
    const onFail = (err: Error): void => {
      cleanup();
      reject(
        new HarnessError('HARNESS_ERR_BAD_REPLY', `bittorrent-tracker client: ${err.message}`, {
          cause: err,
        }),
      );
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new HarnessError('HARNESS_ERR_TIMEOUT', `no scrape answer within ${timeoutMs} ms`));
    }, timeoutMs);
    client.on('scrape', onScrape);
    client.on('warning', onFail);
    client.on('error', onFail);
    client.scrape();
  });
}

export function destroyClient(client: Client): Promise<void> {
  return new Promise((resolve) => client.destroy(() => resolve()));
}
