// Loads the bittorrent-tracker npm client for HTTP/UDP interop tests.
// Its WebRTC dependency (webrtc-polyfill -> node-datachannel) needs a native
// addon that an install with scripts ignored never builds, and the client
// imports it at load time even when only http:// and udp:// trackers are
// used. A module hook answers that import with "no WebRTC", which the client
// supports (simple-peer's WEBRTC_SUPPORT = false).
import type { EventEmitter } from 'node:events';
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
 * Calls `send` and resolves with the client's next `event`. Rejects on
 * 'warning'/'error' (tracker failures) or when nothing came within
 * `timeoutMs` (`what` names the request in that error).
 */
function nextEvent<T>(
  client: Client,
  event: 'update' | 'scrape',
  send: () => void,
  what: string,
  timeoutMs: number,
): Promise<T> {
  const emitter: EventEmitter = client;
  return new Promise((resolve, reject) => {
    const cleanup = (): void => {
      clearTimeout(timer);
      emitter.off(event, onEvent);
      emitter.off('warning', onFail);
      emitter.off('error', onFail);
    };
    const onEvent = (data: T): void => {
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
      reject(new HarnessError('HARNESS_ERR_TIMEOUT', `no ${what} within ${timeoutMs} ms`));
    }, timeoutMs);
    emitter.on(event, onEvent);
    emitter.on('warning', onFail);
    emitter.on('error', onFail);
    send();
  });
}

/**
 * Sends one announce and resolves with its 'update' event and the 'peer'
 * events that came with it (the client emits them right after 'update', in
 * the same tick). Rejects on 'warning'/'error' (tracker failures) or timeout.
 */
export async function announceWith(
  client: Client,
  verb: AnnounceVerb,
  opts: AnnounceOptions,
  timeoutMs = 5_000,
): Promise<ClientAnnounce> {
  const peers: string[] = [];
  const onPeer = (addr: string): void => {
    peers.push(addr);
  };
  client.on('peer', onPeer);
  try {
    const update = await nextEvent<UpdateEvent>(
      client,
      'update',
      () => client[verb](opts),
      `answer to ${verb}`,
      timeoutMs,
    );
    // The peer events follow synchronously in the same handler.
    await new Promise((r) => setImmediate(r));
    return { update, peers };
  } finally {
    client.off('peer', onPeer);
  }
}

/** Scrapes the client's own torrent and resolves with the 'scrape' event. */
export function scrapeWith(client: Client, timeoutMs = 5_000): Promise<ScrapeEvent> {
  return nextEvent<ScrapeEvent>(
    client,
    'scrape',
    () => client.scrape(),
    'scrape answer',
    timeoutMs,
  );
}

export function destroyClient(client: Client): Promise<void> {
  return new Promise((resolve) => client.destroy(() => resolve()));
}
