// Tracker-policy helpers for the end-to-end tests (docs/policy.md):
// storage-api's admin API, announces that report a refusal as a value (its
// text and code) instead of throwing, BEP 41 URL data on UDP announces, the
// refusal counters a gateway exposes on /metrics, and the two-gateway
// topology the policy tests ask.
import { HarnessError } from '@shoal/testing/errors';
import { startLocalTopology, type LocalTopology } from '@shoal/testing/topology';
import {
  announcePacket,
  announceQuery,
  decodeBencodeDict,
  randomInfoHash,
  randomPeerId,
  UDP_ACTION,
  UdpTrackerClient,
  type AnnounceParams,
} from '@shoal/testing/tracker-client';

// ---------------------------------------------------------------- admin API

export interface AdminAnswer {
  status: number;
  /** Parsed JSON body; undefined for an empty body (304, 204). */
  body: unknown;
}

/** One admin API call (Bearer token, JSON in and out), bounded at 5 s. */
export async function adminCall(
  baseUrl: string,
  token: string,
  method: 'GET' | 'PUT' | 'POST' | 'DELETE',
  path: string,
  body?: unknown,
): Promise<AdminAnswer> {
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${baseUrl}${path}`, {
    method,
    headers,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(5_000),
  });
  const text = await res.text();
  let parsed: unknown;
  if (text !== '') {
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new HarnessError(
        'HARNESS_ERR_BAD_REPLY',
        `${method} ${path}: ${res.status} with a non-JSON body: ${text.slice(0, 200)}`,
        { cause: err },
      );
    }
  }
  return { status: res.status, body: parsed };
}

/** Like adminCall, but throws unless the status is `expect`. */
export async function adminOk(
  baseUrl: string,
  token: string,
  method: 'GET' | 'PUT' | 'POST' | 'DELETE',
  path: string,
  body?: unknown,
  expect = 200,
): Promise<unknown> {
  const answer = await adminCall(baseUrl, token, method, path, body);
  if (answer.status !== expect)
    throw new HarnessError(
      'HARNESS_ERR_BAD_REPLY',
      `${method} ${path}: HTTP ${answer.status} (expected ${expect}): ${JSON.stringify(answer.body)}`,
    );
  return answer.body;
}

export interface CreatedPasskey {
  passkey: string;
  user?: string;
  createdAt: string | null;
  /** ISO 8601 or null (never expires). */
  expiresAt: string | null;
}

export async function createPasskey(
  baseUrl: string,
  token: string,
  input: { passkey?: string; user?: string; ttlSeconds?: number },
): Promise<CreatedPasskey> {
  const body = (await adminOk(baseUrl, token, 'POST', '/v1/admin/passkeys', input, 201)) as
    Partial<CreatedPasskey> | undefined;
  if (typeof body?.passkey !== 'string')
    throw new HarnessError('HARNESS_ERR_BAD_REPLY', `no passkey in ${JSON.stringify(body)}`);
  return body as CreatedPasskey;
}

// ---------------------------------------------------------------- announces

/**
 * An announce's answer: served, or refused with the text the client sees
 * (over HTTP also its BEP 31 `retry in`, when the answer has one).
 */
export type AnnounceOutcome =
  | { ok: true; seeders: number; leechers: number }
  | { ok: false; reason: string; code: string | undefined; retryIn?: unknown };

/** The trailing " [CODE]" every Shoal refusal ends with. */
export function refusalCode(reason: string): string | undefined {
  return /\[([A-Z0-9_]+)\]\s*$/.exec(reason)?.[1];
}

/** HTTP announce to `announceUrl` (which may end with /<passkey>); a failure reason is an outcome, not a throw. */
export async function httpAnnounceOutcome(
  announceUrl: string,
  a: AnnounceParams,
): Promise<AnnounceOutcome> {
  const res = await fetch(`${announceUrl}?${announceQuery(a)}`, {
    signal: AbortSignal.timeout(5_000),
  });
  const body = Buffer.from(await res.arrayBuffer());
  if (res.status !== 200)
    throw new HarnessError(
      'HARNESS_ERR_BAD_REPLY',
      `HTTP ${res.status} from ${announceUrl}: ${body.toString('utf8').slice(0, 200)}`,
    );
  const dict = decodeBencodeDict(body);
  const failure = dict['failure reason'];
  if (Buffer.isBuffer(failure)) {
    const reason = failure.toString('utf8');
    return { ok: false, reason, code: refusalCode(reason), retryIn: dict['retry in'] };
  }
  const { complete, incomplete } = dict;
  if (typeof complete !== 'number' || typeof incomplete !== 'number')
    throw new HarnessError('HARNESS_ERR_BAD_REPLY', 'announce answer without complete/incomplete');
  return { ok: true, seeders: complete, leechers: incomplete };
}

// BEP 41 option types.
export const BEP41_END_OF_OPTIONS = 0x0;
export const BEP41_NOP = 0x1;
export const BEP41_URL_DATA = 0x2;

/**
 * A BEP 15 announce followed by BEP 41 options carrying `urlData` (the path
 * and query of the tracker URL, e.g. "/announce/<passkey>"): one URLData
 * option (type 2, length byte, bytes) per 255 bytes, then EndOfOptions.
 */
export function announcePacketWithUrlData(
  connectionId: Buffer,
  transactionId: number,
  a: AnnounceParams,
  urlData: string,
): Buffer {
  const data = Buffer.from(urlData, 'utf8');
  const options: Buffer[] = [];
  for (let i = 0; i < data.length; i += 255) {
    const chunk = data.subarray(i, i + 255);
    options.push(Buffer.from([BEP41_URL_DATA, chunk.length]), chunk);
  }
  options.push(Buffer.from([BEP41_END_OF_OPTIONS]));
  return Buffer.concat([announcePacket(connectionId, transactionId, a), ...options]);
}

/** UDP announce on an open client and connection id, with BEP 41 URL data when given. */
export async function udpAnnounceOutcome(
  client: UdpTrackerClient,
  connectionId: Buffer,
  a: AnnounceParams,
  urlData?: string,
): Promise<AnnounceOutcome> {
  const tid = client.transactionId();
  const packet =
    urlData === undefined
      ? announcePacket(connectionId, tid, a)
      : announcePacketWithUrlData(connectionId, tid, a, urlData);
  const reply = await client.exchange(packet, tid, 3_000);
  if (reply === undefined)
    throw new HarnessError(
      'HARNESS_ERR_TIMEOUT',
      `no UDP reply from ${client.host}:${client.port}`,
    );
  if (reply.action === UDP_ACTION.error) {
    const reason = reply.packet.subarray(8).toString('utf8');
    return { ok: false, reason, code: refusalCode(reason) };
  }
  if (reply.action !== UDP_ACTION.announce || reply.packet.length < 20)
    throw new HarnessError(
      'HARNESS_ERR_BAD_REPLY',
      `UDP action ${reply.action}, ${reply.packet.length} bytes`,
    );
  return {
    ok: true,
    leechers: reply.packet.readUInt32BE(12),
    seeders: reply.packet.readUInt32BE(16),
  };
}

/** A seeder with a fresh peer id on `port`, in swarm `infoHash` (a new one unless given). */
export function seeder(port: number, infoHash: Buffer = randomInfoHash()): AnnounceParams {
  return { infoHash, peerId: randomPeerId(), port, left: 0n };
}

/** "served" or the refusal code (or text when it has no code), for compact assertions. */
export function verdict(o: AnnounceOutcome): string {
  return o.ok ? 'served' : (o.code ?? o.reason);
}

// ---------------------------------------------------------------- metrics

/**
 * The sum of every sample of the metrics `names` whose labels include all of
 * `labels`, from a Prometheus text exposition.
 */
export function sumSamples(
  exposition: string,
  names: readonly string[],
  labels: Readonly<Record<string, string>> = {},
): number {
  let sum = 0;
  for (const line of exposition.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (m === null || !names.includes(m[1]!)) continue;
    const got = new Map<string, string>();
    for (const l of (m[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      got.set(l[1]!, l[2]!);
    if (Object.entries(labels).every(([k, v]) => got.get(k) === v)) sum += Number(m[4]);
  }
  return sum;
}

export async function fetchText(url: string): Promise<string> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  if (res.status !== 200)
    throw new HarnessError('HARNESS_ERR_BAD_REPLY', `${url}: HTTP ${res.status}`);
  return res.text();
}

/** The counters a gateway may count a policy refusal in (the policy's own, or the generic request errors). */
export const REFUSAL_METRICS = ['shoal_policy_refusals_total', 'shoal_request_errors_total'];

/** Refusals with `code` a gateway counted so far (any protocol), by whichever counter counts them. */
export async function refusalsCounted(metricsUrl: string, code: string): Promise<number> {
  const text = await fetchText(metricsUrl);
  return Math.max(...REFUSAL_METRICS.map((name) => sumSamples(text, [name], { code })));
}

/** Resolves when `url` answers 200 (a gateway's /readyz after its first policy load). */
export async function waitReady(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: string;
  for (;;) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      last = `HTTP ${res.status} ${(await res.text()).slice(0, 200)}`;
      if (res.status === 200) return;
    } catch (err) {
      last = String(err);
    }
    if (Date.now() > deadline)
      throw new HarnessError('HARNESS_ERR_TIMEOUT', `${url} not ready in ${timeoutMs} ms: ${last}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// ---------------------------------------------------------------- convergence

/** One way of asking one replica about one announce (a gateway and a protocol). */
export interface Probe {
  name: string;
  run(): Promise<AnnounceOutcome>;
}

export interface Converged {
  name: string;
  /** ms from `sinceMs` (performance.now()) to the first answer that satisfied the condition. */
  ms: number;
  outcome: AnnounceOutcome;
}

/**
 * Polls every probe (each on its own, every `everyMs`) until its answer
 * satisfies `done`; resolves with how long each took from `sinceMs`. Throws
 * HARNESS_ERR_TIMEOUT with each probe's last answer after `timeoutMs`.
 */
export async function timeUntil(
  probes: readonly Probe[],
  done: (o: AnnounceOutcome) => boolean,
  sinceMs: number,
  timeoutMs: number,
  everyMs = 50,
): Promise<Converged[]> {
  const deadline = sinceMs + timeoutMs;
  const last = new Map<string, string>();
  return Promise.all(
    probes.map(async (p): Promise<Converged> => {
      for (;;) {
        const outcome = await p.run();
        const at = performance.now();
        if (done(outcome)) return { name: p.name, ms: at - sinceMs, outcome };
        last.set(p.name, verdict(outcome));
        if (at > deadline)
          throw new HarnessError(
            'HARNESS_ERR_TIMEOUT',
            `${p.name} still answered ${verdict(outcome)} after ${timeoutMs} ms ` +
              `(others: ${JSON.stringify(Object.fromEntries(last))})`,
          );
        await new Promise((r) => setTimeout(r, everyMs));
      }
    }),
  );
}

// ---------------------------------------------------------------- a policy topology

/**
 * The local topology with `gatewayEnv` on both gateways, each ready (its
 * first policy load done, docs/policy.md) and with a connected UDP client:
 * what a policy test asks every replica over both protocols.
 */
export class PolicyTopology {
  readonly topo: LocalTopology;
  /** One connected client per gateway, in the order of `topo.gateways`. */
  readonly udp: ReadonlyArray<{ client: UdpTrackerClient; connectionId: Buffer }>;

  private constructor(
    topo: LocalTopology,
    udp: ReadonlyArray<{ client: UdpTrackerClient; connectionId: Buffer }>,
  ) {
    this.topo = topo;
    this.udp = udp;
  }

  static async start(gatewayEnv: Readonly<Record<string, string>>): Promise<PolicyTopology> {
    const topo = await startLocalTopology({ gatewayEnv });
    const udp: Array<{ client: UdpTrackerClient; connectionId: Buffer }> = [];
    try {
      await Promise.all(topo.gateways.map((g) => waitReady(`${g.admin}/readyz`, 20_000)));
      for (const g of topo.gateways) {
        const client = await UdpTrackerClient.open(Number(new URL(g.udpAnnounce).port));
        udp.push({ client, connectionId: await client.connect() });
      }
    } catch (err) {
      await Promise.all(udp.map((u) => u.client.close()));
      await topo.stop();
      throw err;
    }
    return new PolicyTopology(topo, udp);
  }

  /**
   * One probe per gateway and protocol: HTTP at /announce[/<passkey>], UDP
   * with BEP 41 URL data "/announce/<passkey>" (none at all without a passkey).
   */
  probes(params: AnnounceParams, passkey?: string): Probe[] {
    return this.topo.gateways.flatMap((g, i) => [
      {
        name: `${g.name} http`,
        run: () =>
          httpAnnounceOutcome(
            passkey === undefined ? g.httpAnnounce : `${g.httpAnnounce}/${passkey}`,
            params,
          ),
      },
      {
        name: `${g.name} udp`,
        run: () =>
          udpAnnounceOutcome(
            this.udp[i]!.client,
            this.udp[i]!.connectionId,
            params,
            passkey === undefined ? undefined : `/announce/${passkey}`,
          ),
      },
    ]);
  }

  /** Each probe's verdict on `params` (a fresh announce each time, same peer), by probe name. */
  async answers(params: AnnounceParams, passkey?: string): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    for (const p of this.probes(params, passkey)) out[p.name] = verdict(await p.run());
    return out;
  }

  /** What `answers` gives when every probe's verdict is `v`. */
  everywhere(v: string): Record<string, string> {
    return Object.fromEntries(
      this.topo.gateways.flatMap((g) => [
        [`${g.name} http`, v],
        [`${g.name} udp`, v],
      ]),
    );
  }

  async stop(): Promise<void> {
    await Promise.all(this.udp.map((u) => u.client.close()));
    await this.topo.stop();
  }
}
