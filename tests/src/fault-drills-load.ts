// Steady mixed HTTP + UDP announce load for fault drills (tests/src/fault-drills.test.ts)
// and the soak (bench/soak.ts). Open loop at a bounded rate: a hung request
// does not slow the load down, it shows up as `no-answer`. Every answer is
// classified, so a drill can say "valid answer or coded retry-later, nothing
// else" and measure how long announces took to recover after a fault.
//
// Simulated peers live through started -> (none)* -> completed -> (none)* ->
// stopped, each on one transport, hitting a random gateway that is up (the
// load balancer's job in production). A peer resends `completed` until the
// tracker acknowledges it, as clients do, and the load keeps, per torrent,
// the completions acknowledged and those whose outcome is unknown (answered
// retry-later, or not at all), so `checkDownloads` can tell a lost download
// (scrape's downloaded below the acknowledged ones) from a doubly counted one
// (above acknowledged + unknown). docs/decisions.md "Tracker semantics": a completion counts once per peer.
import { randomBytes } from 'node:crypto';
import type { LocalTopology, ServerProcess, ServiceProcess } from '@shoal/testing/topology';
import {
  UDP_ACTION,
  UdpTrackerClient,
  announcePacket,
  announceQuery,
  connectPacket,
  decodeBencodeDict,
  httpScrape,
  randomPeerId,
  type AnnounceParams,
  type EventName,
} from '@shoal/testing/tracker-client';

/** A process of the local topology that a fault may kill. */
export type TopologyProcess = ServerProcess | ServiceProcess;

/** Every process of `topo`, stores first: those a drill checks for crashes besides its victim. */
export function topologyProcesses(topo: LocalTopology): TopologyProcess[] {
  return [
    ...topo.redisProcesses,
    ...topo.sentinelProcesses,
    topo.postgresProcess,
    topo.storageApiProcess,
    ...topo.gcWorkerProcesses,
    ...topo.gatewayProcesses,
  ];
}

export interface LoadGateway {
  name: string;
  httpAnnounce: string;
  udpAnnounce: string;
  scrape: string;
}

/**
 * ok: a valid announce answer. retry-later: a failure reason ending in
 * "retry later [CODE]" (BEP 31). internal: the same shape with
 * GATEWAY_ERR_INTERNAL, an unexpected exception (a bug, not an outage).
 * refused: any other failure reason (the load sends only valid announces).
 * bad-answer: not a tracker answer (HTTP status, bencode, packet layout).
 * transport-error: connection refused or reset. no-answer: nothing within
 * the hang bound. gateway-lost: a transport error or no answer from a gateway
 * that was down (killed by the drill) while the request was in flight.
 */
export type AnswerKind =
  | 'ok'
  | 'retry-later'
  | 'internal'
  | 'refused'
  | 'bad-answer'
  | 'transport-error'
  | 'no-answer'
  | 'gateway-lost';

export const ANSWER_KINDS: readonly AnswerKind[] = [
  'ok',
  'retry-later',
  'internal',
  'refused',
  'bad-answer',
  'transport-error',
  'no-answer',
  'gateway-lost',
];

/** Kinds a fault may produce: anything else fails a drill. */
export const ACCEPTABLE: ReadonlySet<AnswerKind> = new Set(['ok', 'retry-later', 'gateway-lost']);

export interface Answer {
  /** performance.now() when sent and when answered (or given up). */
  sentAt: number;
  doneAt: number;
  kind: AnswerKind;
  transport: 'http' | 'udp';
  gateway: string;
  event: EventName;
  /** The error code in brackets, for retry-later / internal / refused. */
  code?: string;
  /** The failure text or transport error, for kinds other than ok. */
  detail?: string;
}

export interface FaultLoadOptions {
  /** Announces started per second, both transports together. */
  ratePerSecond: number;
  torrents: number;
  /** Peers kept alive per torrent. */
  peersPerTorrent?: number;
  /** No answer after this long is `no-answer`. */
  hangMs?: number;
  /** Share of peers on UDP. */
  udpShare?: number;
  /** Most requests in flight; past it a send is skipped and counted (it means answers hang). */
  maxInFlight?: number;
}

type Phase = 'start' | 'leech' | 'complete' | 'seed' | 'stop';

interface Peer {
  torrent: number;
  peerId: Buffer;
  port: number;
  transport: 'http' | 'udp';
  /** Started complete (left=0): never sends completed. */
  seeder: boolean;
  phase: Phase;
  /** Announces left in the current phase. */
  remaining: number;
  busy: boolean;
  /** A completed was sent and not acknowledged (yet). */
  completionUnknown: boolean;
  /** The first completed that was not acknowledged, if any. */
  completionFailed?: { at: number; kind: AnswerKind; code?: string };
}

/** A completion acknowledged only after an attempt that was not: the first attempt may have counted. */
export interface RetriedCompletion {
  port: number;
  failedAt: number;
  failed: string;
  ackedAt: number;
}

interface TorrentBook {
  infoHash: Buffer;
  nextPort: number;
  /** Peers whose completed the tracker acknowledged (counted once each). */
  acked: number;
  /** Peers that sent completed and never got it acknowledged: may or may not count. */
  unknown: number;
  retried: RetriedCompletion[];
}

const RETRY_LATER = /retry later \[([A-Z0-9_]+)\]$/;
const CODE = /\[([A-Z0-9_]+)\]$/;

function classifyFailure(reason: string): { kind: AnswerKind; code?: string } {
  const retry = RETRY_LATER.exec(reason);
  if (retry !== null) {
    const code = retry[1]!;
    return { kind: code === 'GATEWAY_ERR_INTERNAL' ? 'internal' : 'retry-later', code };
  }
  const code = CODE.exec(reason)?.[1];
  return code === undefined ? { kind: 'refused' } : { kind: 'refused', code };
}

/** Decodes an HTTP announce answer into a kind; never throws. */
export function classifyHttpAnswer(
  status: number,
  body: Buffer,
): { kind: AnswerKind; code?: string; detail?: string } {
  if (status !== 200) return { kind: 'bad-answer', detail: `HTTP ${status}` };
  let dict;
  try {
    dict = decodeBencodeDict(body);
  } catch (err) {
    return { kind: 'bad-answer', detail: (err as Error).message };
  }
  const failure = dict['failure reason'];
  if (failure !== undefined) {
    const reason = Buffer.isBuffer(failure) ? failure.toString('utf8') : '';
    const c = classifyFailure(reason);
    // BEP 31: a retry-later answer says when.
    if (c.kind === 'retry-later' && typeof dict['retry in'] !== 'number')
      return { kind: 'bad-answer', detail: `retry later without "retry in": ${reason}` };
    return { ...c, detail: reason };
  }
  const peers = dict.peers;
  const valid =
    typeof dict.interval === 'number' &&
    typeof dict.complete === 'number' &&
    typeof dict.incomplete === 'number' &&
    Buffer.isBuffer(peers) &&
    peers.length % 6 === 0;
  return valid ? { kind: 'ok' } : { kind: 'bad-answer', detail: 'announce answer lacks a field' };
}

/** Decodes a UDP announce answer (BEP 15) into a kind; never throws. */
export function classifyUdpAnswer(packet: Buffer): {
  kind: AnswerKind;
  code?: string;
  detail?: string;
} {
  const action = packet.readUInt32BE(0);
  if (action === UDP_ACTION.announce)
    return packet.length >= 20 && (packet.length - 20) % 6 === 0
      ? { kind: 'ok' }
      : { kind: 'bad-answer', detail: `announce answer of ${packet.length} bytes` };
  if (action === UDP_ACTION.error) {
    const reason = packet.subarray(8).toString('utf8');
    return { ...classifyFailure(reason), detail: reason };
  }
  return { kind: 'bad-answer', detail: `action ${action}` };
}

function pick<T>(xs: readonly T[]): T {
  return xs[Math.floor(Math.random() * xs.length)]!;
}

export class FaultLoad {
  readonly answers: Answer[] = [];
  /** Sends skipped because maxInFlight requests were outstanding. */
  skipped = 0;
  private readonly gateways: LoadGateway[];
  private readonly opts: Required<FaultLoadOptions>;
  private readonly torrents: TorrentBook[];
  private readonly peers: Peer[] = [];
  private readonly downSince = new Map<string, number>();
  /** Per gateway, the windows [from, to] it was down; to = Infinity while down. */
  private readonly downWindows = new Map<string, Array<[number, number]>>();
  private readonly udp = new Map<string, UdpTrackerClient>();
  private connectionId: { id: Buffer; at: number } | undefined;
  private timer: NodeJS.Timeout | undefined;
  private inFlight = new Set<Promise<void>>();
  private credit = 0;
  private lastTick = 0;

  constructor(gateways: readonly LoadGateway[], options: FaultLoadOptions) {
    this.gateways = [...gateways];
    this.opts = {
      peersPerTorrent: 6,
      hangMs: 5_000,
      udpShare: 0.5,
      maxInFlight: 500,
      ...options,
    };
    this.torrents = Array.from({ length: options.torrents }, () => ({
      infoHash: randomBytes(20),
      nextPort: 10_000,
      acked: 0,
      unknown: 0,
      retried: [],
    }));
  }

  get infoHashes(): Buffer[] {
    return this.torrents.map((t) => t.infoHash);
  }

  async start(): Promise<void> {
    for (const g of this.gateways)
      this.udp.set(g.name, await UdpTrackerClient.open(Number(new URL(g.udpAnnounce).port)));
    this.lastTick = performance.now();
    this.timer = setInterval(() => this.tick(), 10);
  }

  /** Stops sending and waits for every request in flight (each bounded by hangMs). */
  async stop(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    await Promise.all(this.inFlight);
    await Promise.all([...this.udp.values()].map((c) => c.close()));
    this.udp.clear();
  }

  /** The drill is taking this gateway down: route around it, and blame it for what was in flight. */
  markDown(name: string): void {
    const now = performance.now();
    this.downSince.set(name, now);
    this.downWindows.set(name, [...(this.downWindows.get(name) ?? []), [now, Infinity]]);
  }

  markUp(name: string): void {
    this.downSince.delete(name);
    const w = this.downWindows.get(name)?.at(-1);
    if (w !== undefined && w[1] === Infinity) w[1] = performance.now();
  }

  private wasDown(name: string, from: number, to: number): boolean {
    return (this.downWindows.get(name) ?? []).some(([a, b]) => a <= to && from <= b);
  }

  private tick(): void {
    const now = performance.now();
    this.credit += ((now - this.lastTick) / 1000) * this.opts.ratePerSecond;
    this.lastTick = now;
    // A stalled event loop must not turn into a burst.
    this.credit = Math.min(this.credit, this.opts.ratePerSecond / 10 + 1);
    while (this.credit >= 1) {
      this.credit -= 1;
      if (this.inFlight.size >= this.opts.maxInFlight) {
        this.skipped++;
        continue;
      }
      const peer = this.nextPeer();
      if (peer === undefined) continue;
      const p = this.announce(peer).finally(() => this.inFlight.delete(p));
      this.inFlight.add(p);
    }
  }

  private nextPeer(): Peer | undefined {
    const t = Math.floor(Math.random() * this.torrents.length);
    const book = this.torrents[t]!;
    const live = this.peers.filter((p) => p.torrent === t);
    if (live.length < this.opts.peersPerTorrent) {
      const peer: Peer = {
        torrent: t,
        peerId: randomPeerId('-SH0FD0-'),
        port: book.nextPort++,
        transport: Math.random() < this.opts.udpShare ? 'udp' : 'http',
        // One in four starts as a seeder, the rest download.
        seeder: Math.random() < 0.25,
        phase: 'start',
        remaining: 1,
        busy: false,
        completionUnknown: false,
      };
      this.peers.push(peer);
      return peer;
    }
    const idle = live.filter((p) => !p.busy);
    return idle.length === 0 ? undefined : pick(idle);
  }

  private params(peer: Peer): AnnounceParams {
    const book = this.torrents[peer.torrent]!;
    const done = peer.seeder || (peer.phase !== 'start' && peer.phase !== 'leech');
    const event: EventName =
      peer.phase === 'start'
        ? 'started'
        : peer.phase === 'complete'
          ? 'completed'
          : peer.phase === 'stop'
            ? 'stopped'
            : 'none';
    return {
      infoHash: book.infoHash,
      peerId: peer.peerId,
      port: peer.port,
      left: done ? 0n : 1_000_000n,
      event,
      numWant: 20,
    };
  }

  /** Moves a peer on after an answer; a completed is resent until acknowledged. */
  private advance(peer: Peer, answer: Answer): void {
    const ok = answer.kind === 'ok';
    const book = this.torrents[peer.torrent]!;
    switch (peer.phase) {
      case 'start':
        if (!ok) return;
        peer.phase = peer.seeder ? 'seed' : 'leech';
        peer.remaining = 1 + Math.floor(Math.random() * 3);
        return;
      case 'leech':
        if (ok && --peer.remaining <= 0) peer.phase = 'complete';
        return;
      case 'complete':
        if (ok) {
          book.acked++;
          if (peer.completionUnknown) book.unknown--;
          peer.completionUnknown = false;
          const f = peer.completionFailed;
          if (f !== undefined)
            book.retried.push({
              port: peer.port,
              failedAt: f.at,
              failed: f.code === undefined ? f.kind : `${f.kind}:${f.code}`,
              ackedAt: answer.doneAt,
            });
          peer.phase = 'seed';
          peer.remaining = 1 + Math.floor(Math.random() * 3);
        } else if (!peer.completionUnknown) {
          peer.completionUnknown = true;
          peer.completionFailed = {
            at: answer.sentAt,
            kind: answer.kind,
            ...(answer.code === undefined ? {} : { code: answer.code }),
          };
          book.unknown++;
        }
        return;
      case 'seed':
        if (ok && --peer.remaining <= 0) peer.phase = 'stop';
        return;
      case 'stop': {
        // Sent once, as clients do on exit, whatever the answer.
        const i = this.peers.indexOf(peer);
        if (i >= 0) this.peers.splice(i, 1);
        return;
      }
      default: {
        const never: never = peer.phase;
        throw new Error(`unknown phase ${String(never)}`);
      }
    }
  }

  private async announce(peer: Peer): Promise<void> {
    const up = this.gateways.filter((g) => !this.downSince.has(g.name));
    if (up.length === 0) return;
    const gateway = pick(up);
    const params = this.params(peer);
    peer.busy = true;
    const sentAt = performance.now();
    let result: { kind: AnswerKind; code?: string; detail?: string };
    try {
      result =
        peer.transport === 'http'
          ? await this.httpAnnounce(gateway, params)
          : await this.udpAnnounce(gateway, params);
    } catch (err) {
      result = { kind: 'transport-error', detail: (err as Error).message };
    }
    const doneAt = performance.now();
    if (
      (result.kind === 'transport-error' || result.kind === 'no-answer') &&
      this.wasDown(gateway.name, sentAt, doneAt)
    )
      result = { ...result, kind: 'gateway-lost' };
    const answer: Answer = {
      sentAt,
      doneAt,
      transport: peer.transport,
      gateway: gateway.name,
      event: params.event ?? 'none',
      ...result,
    };
    this.answers.push(answer);
    peer.busy = false;
    this.advance(peer, answer);
  }

  private async httpAnnounce(
    g: LoadGateway,
    params: AnnounceParams,
  ): Promise<{ kind: AnswerKind; code?: string; detail?: string }> {
    let res: Response;
    try {
      res = await fetch(`${g.httpAnnounce}?${announceQuery(params)}`, {
        signal: AbortSignal.timeout(this.opts.hangMs),
      });
      return classifyHttpAnswer(res.status, Buffer.from(await res.arrayBuffer()));
    } catch (err) {
      const e = err as Error & { cause?: { code?: string } };
      if (e.name === 'TimeoutError') return { kind: 'no-answer', detail: 'HTTP' };
      return { kind: 'transport-error', detail: `${e.message} ${e.cause?.code ?? ''}`.trim() };
    }
  }

  private async udpConnectionId(g: LoadGateway): Promise<Buffer | undefined> {
    // One id for every gateway (they share the secret), renewed each minute.
    if (this.connectionId !== undefined && performance.now() - this.connectionId.at < 60_000)
      return this.connectionId.id;
    const client = this.udp.get(g.name)!;
    const tid = client.transactionId();
    const reply = await client.exchange(connectPacket(tid), tid, this.opts.hangMs);
    if (reply === undefined || reply.action !== UDP_ACTION.connect || reply.packet.length < 16)
      return undefined;
    this.connectionId = { id: Buffer.from(reply.packet.subarray(8, 16)), at: performance.now() };
    return this.connectionId.id;
  }

  private async udpAnnounce(
    g: LoadGateway,
    params: AnnounceParams,
  ): Promise<{ kind: AnswerKind; code?: string; detail?: string }> {
    const client = this.udp.get(g.name);
    if (client === undefined) return { kind: 'transport-error', detail: 'load stopped' };
    const id = await this.udpConnectionId(g);
    if (id === undefined) return { kind: 'no-answer', detail: 'UDP connect' };
    const tid = client.transactionId();
    const reply = await client.exchange(announcePacket(id, tid, params), tid, this.opts.hangMs);
    if (reply === undefined) return { kind: 'no-answer', detail: 'UDP announce' };
    return classifyUdpAnswer(reply.packet);
  }

  /** Answers that completed in [from, to). */
  between(from: number, to = Infinity): Answer[] {
    return this.answers.filter((a) => a.doneAt >= from && a.doneAt < to);
  }

  /**
   * Waits until `streak` answers in a row (all gateways) since the last
   * answer other than ok have come back ok, counting only answers completed
   * after `since`; resolves with the recovery time: from `since` to the end
   * of the last answer that was not ok (0 when there was none). Requests
   * lost with a killed gateway do not count: a client retries them elsewhere.
   */
  async waitRecovered(
    since: number,
    timeoutMs: number,
    streak = 20,
  ): Promise<{ recoveryMs: number; answers: Answer[] }> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const recent = this.between(since).sort((a, b) => a.doneAt - b.doneAt);
      let lastBad = -1;
      recent.forEach((a, i) => {
        if (a.kind !== 'ok' && a.kind !== 'gateway-lost') lastBad = i;
      });
      if (recent.length - lastBad - 1 >= streak)
        return {
          recoveryMs: lastBad < 0 ? 0 : recent[lastBad]!.doneAt - since,
          answers: recent,
        };
      if (performance.now() > deadline)
        throw new Error(
          `announces did not recover within ${timeoutMs} ms: ${JSON.stringify(countKinds(recent))}; ` +
            `last failures: ${recent
              .filter((a) => a.kind !== 'ok')
              .slice(-3)
              .map((a) => `${a.kind} ${a.gateway} ${a.detail ?? ''}`)
              .join(' | ')}`,
        );
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Per torrent: completions acknowledged, those of unknown outcome, and those acknowledged after a failed attempt. */
  downloadBooks(): Array<{
    infoHash: Buffer;
    acked: number;
    unknown: number;
    retried: RetriedCompletion[];
  }> {
    return this.torrents.map(({ infoHash, acked, unknown, retried }) => ({
      infoHash,
      acked,
      unknown,
      retried: [...retried],
    }));
  }
}

export function countKinds(answers: readonly Answer[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const a of answers) {
    const key = a.code === undefined ? a.kind : `${a.kind}:${a.code}`;
    out[key] = (out[key] ?? 0) + 1;
  }
  return out;
}

export interface DownloadCheck {
  torrents: number;
  acked: number;
  unknown: number;
  downloaded: number;
  /**
   * Torrents whose downloaded count is below the acknowledged completions,
   * with the completions acknowledged only on a retry (the likely ones: a
   * first attempt applied but not answered makes the retry find a seeder).
   */
  lost: Array<{
    infoHash: string;
    acked: number;
    downloaded: number;
    retried: RetriedCompletion[];
  }>;
  /** Completions acknowledged only after a failed attempt, all torrents. */
  retried: number;
  /** Torrents whose count exceeds acknowledged + unknown completions: a peer counted twice. */
  doubled: Array<{ infoHash: string; acked: number; unknown: number; downloaded: number }>;
}

/**
 * Compares scrape's `downloaded` with the completions the load saw answered.
 * Call after load.stop(), with every process back: storage-api adds
 * downloads held during a data-store outage with its next batch, so the
 * scrape is repeated until two reads agree.
 */
export async function checkDownloads(
  load: FaultLoad,
  scrapeUrl: string,
  timeoutMs = 20_000,
): Promise<DownloadCheck> {
  const books = load.downloadBooks();
  const hashes = books.map((b) => b.infoHash);
  const deadline = performance.now() + timeoutMs;
  let previous: number[] | undefined;
  let counts: number[] = [];
  for (;;) {
    counts = [];
    for (let i = 0; i < hashes.length; i += 50) {
      const entries = await httpScrape(scrapeUrl, hashes.slice(i, i + 50));
      counts.push(...entries.map((e) => e.downloaded));
    }
    if (previous !== undefined && previous.every((c, i) => c === counts[i])) break;
    if (performance.now() > deadline) break;
    previous = counts;
    await new Promise((r) => setTimeout(r, 1_000));
  }
  const out: DownloadCheck = {
    torrents: books.length,
    acked: 0,
    unknown: 0,
    retried: 0,
    downloaded: 0,
    lost: [],
    doubled: [],
  };
  books.forEach((b, i) => {
    const downloaded = counts[i] ?? 0;
    out.acked += b.acked;
    out.unknown += b.unknown;
    out.downloaded += downloaded;
    const infoHash = b.infoHash.toString('hex');
    out.retried += b.retried.length;
    if (downloaded < b.acked)
      out.lost.push({ infoHash, acked: b.acked, downloaded, retried: b.retried });
    if (downloaded > b.acked + b.unknown)
      out.doubled.push({ infoHash, acked: b.acked, unknown: b.unknown, downloaded });
  });
  return out;
}
