// WebSocket (WebTorrent) tracker load generator: many connections, each a
// browser-like peer that announces with offers and answers every offer it is
// relayed, as the bittorrent-tracker client does (docs/webtorrent.md). It
// measures one tracker per run; bench/ws-load.sh runs it beside
// bittorrent-tracker's server and prints the ratios.
//
//   node bench/ws-load.ts throughput URL [--connections N] [--swarms N] [--offers N] [--seconds N] [--processes N] [--pid PID]
//     closed loop: every connection keeps one announce (with offers) in
//     flight; prints announces/s answered, offers and answers relayed, and
//     with --pid of the tracker the announces per CPU second it used.
//   node bench/ws-load.ts latency URL [--rate N] [--url2 URL2] ...
//     open loop at N announces/s in all: relay latency p50/p99 of offers
//     (announcer -> tracker -> peer) and answers (peer -> tracker -> announcer);
//     with --url2 (a second gateway of the same deployment) each swarm's
//     peers alternate between the two and the latency is also given for
//     relays that crossed from one gateway to the other.
//   node bench/ws-load.ts idle URL --pid PID --connections N [--processes N]
//     the tracker's RSS growth per connection that connected and announced
//     once, then stays idle (answering pings).
//
// Connections are spread over worker processes (one process holds at most
// its `ulimit -n` sockets) and over source addresses 127.0.0.1-127.0.0.N so
// that 50k connections to one port do not run out of ephemeral ports. Every
// wait is bounded; the output's last line is one JSON object.
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';

type Mode = 'throughput' | 'latency' | 'idle';

interface WorkerTask {
  mode: Mode;
  /** One tracker URL, or two gateways of one deployment (a swarm's peers alternate between them). */
  urls: string[];
  first: number;
  count: number;
  swarms: number;
  offers: number;
  seconds: number;
  /** Announces per second for this worker (latency mode). */
  rate: number;
  localAddress: string;
  /** This worker's number: offer ids carry it, so they are unique across workers. */
  worker: number;
}

/** The coordinator's start: offers sent before countFromMs (the warm-up) are not counted. */
interface Go {
  type: 'go';
  countFromMs: number;
}

interface WorkerReport {
  connected: number;
  connectFailures: number;
  announced: number;
  failures: number;
  offersReceived: number;
  answersReceived: number;
  /** Latency mode: announces sent in the counted window (each relays up to --offers offers). */
  announcesSent: number;
  /**
   * Offers, and answers to offers, sent during the warm-up that arrived
   * after it (latency mode): not counted above, nor in the latency.
   */
  warmupOffers: number;
  warmupAnswers: number;
  /** An offer_id that reached the same recipient twice, or an offer answered twice: the tracker delivered it twice. */
  duplicateOffers: number;
  duplicateAnswers: number;
  /** Relay latency between peers on the same gateway (or the only one). */
  offerLatencyMs: number[];
  answerLatencyMs: number[];
  /** Relay latency between peers on different gateways (two URLs). */
  crossOfferLatencyMs: number[];
  crossAnswerLatencyMs: number[];
  errors: string[];
}

const ID_LEN = 20;
const MAX_SAMPLES = 200_000;
const CONNECT_CONCURRENCY = 256;

function id(prefix: string, n: number): string {
  return (prefix + n.toString(36)).padEnd(ID_LEN, '.').slice(0, ID_LEN);
}

function indexOf(peerId: unknown): number {
  return typeof peerId === 'string' ? parseInt(peerId.slice(1).replace(/\.+$/, ''), 36) : NaN;
}

// Peers n, n + swarms, n + 2 * swarms, ... share a swarm; with two URLs
// they alternate between the gateways, so half of a swarm is on each.
function gatewayOf(n: number, swarms: number, gateways: number): number {
  return Math.floor(n / swarms) % gateways;
}

// Wall-clock ms with sub-ms precision, comparable across worker processes.
function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

function sdp(
  kind: 'offer' | 'answer',
  sentAt: number,
  offerSentAt = 0,
): { type: string; sdp: string } {
  // About the size of a real browser SDP (~600 bytes), with the send time in
  // it, and in an answer the send time of the offer it answers.
  return {
    type: kind,
    sdp: `v=0\r\no=- ${sentAt} ${offerSentAt} IN IP4 127.0.0.1\r\n${'a=x\r\n'.repeat(110)}`,
  };
}

/** The send time in an SDP of sdp(), and the offer's in an answer's. */
function timesOf(desc: unknown): { sentAt: number; offerSentAt: number } | undefined {
  if (typeof desc !== 'object' || desc === null) return undefined;
  const s = (desc as { sdp?: unknown }).sdp;
  if (typeof s !== 'string') return undefined;
  const m = /^v=0\r\no=- ([0-9.]+) ([0-9.]+) /.exec(s);
  return m === null ? undefined : { sentAt: Number(m[1]), offerSentAt: Number(m[2]) };
}

/** Bounded sets of delivered ids: past the bound nothing more is checked, never more memory. */
const MAX_TRACKED = 2_000_000;

function sample(into: number[], value: number, seen: number): void {
  // Reservoir sampling keeps the arrays bounded on long runs.
  if (into.length < MAX_SAMPLES) into.push(value);
  else {
    const j = Math.floor(Math.random() * seen);
    if (j < MAX_SAMPLES) into[j] = value;
  }
}

async function runWorker(task: WorkerTask): Promise<WorkerReport> {
  const report: WorkerReport = {
    connected: 0,
    connectFailures: 0,
    announced: 0,
    failures: 0,
    offersReceived: 0,
    answersReceived: 0,
    announcesSent: 0,
    warmupOffers: 0,
    warmupAnswers: 0,
    duplicateOffers: 0,
    duplicateAnswers: 0,
    offerLatencyMs: [],
    answerLatencyMs: [],
    crossOfferLatencyMs: [],
    crossAnswerLatencyMs: [],
    errors: [],
  };
  const note = (msg: string): void => {
    if (report.errors.length < 20) report.errors.push(msg);
  };
  const sockets: WebSocket[] = [];
  const peers: { peerId: string; infoHash: string }[] = [];
  let measuring = task.mode !== 'throughput';
  let running = true;
  let offerSeq = 0;
  /** Latency mode: offers sent before this (the warm-up) are not counted when they arrive. */
  let countFromMs = 0;
  // Every offer_id is sent to one recipient once, and answered once.
  const offersSeen = new Set<string>();
  const answersSeen = new Set<string>();
  const firstTime = (seen: Set<string>, key: string): boolean => {
    if (seen.has(key)) return false;
    if (seen.size < MAX_TRACKED) seen.add(key);
    return true;
  };
  const offerPrefix = `o${task.worker.toString(36)}-`;

  const announce = (i: number, event?: string): void => {
    const ws = sockets[i];
    const peer = peers[i];
    if (ws === undefined || peer === undefined || ws.readyState !== WebSocket.OPEN) return;
    const sentAt = nowMs();
    const offers = [];
    for (let k = 0; k < task.offers; k++)
      offers.push({ offer: sdp('offer', sentAt), offer_id: id(offerPrefix, offerSeq++) });
    ws.send(
      JSON.stringify({
        action: 'announce',
        info_hash: peer.infoHash,
        peer_id: peer.peerId,
        numwant: task.offers,
        uploaded: 0,
        downloaded: 0,
        left: 1000,
        ...(event === undefined ? {} : { event }),
        offers,
      }),
    );
  };

  const gateways = task.urls.length;
  const crossed = (i: number, from: unknown): boolean =>
    gateways > 1 &&
    gatewayOf(task.first + i, task.swarms, gateways) !==
      gatewayOf(indexOf(from), task.swarms, gateways);

  const onMessage = (i: number, data: WebSocket.RawData): void => {
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse((data as Buffer).toString('utf8')) as Record<string, unknown>;
    } catch {
      note('unparseable message');
      return;
    }
    const now = nowMs();
    if (msg['failure reason'] !== undefined) {
      report.failures++;
      note(`failure reason: ${JSON.stringify(msg['failure reason'])}`);
      if (task.mode === 'throughput' && running) setImmediate(() => announce(i));
      return;
    }
    if (msg.offer !== undefined) {
      const times = timesOf(msg.offer);
      if (!firstTime(offersSeen, `${i} ${String(msg.offer_id)}`)) report.duplicateOffers++;
      if (times !== undefined && times.sentAt < countFromMs) report.warmupOffers++;
      else {
        report.offersReceived++;
        if (measuring && times !== undefined)
          sample(
            crossed(i, msg.peer_id) ? report.crossOfferLatencyMs : report.offerLatencyMs,
            now - times.sentAt,
            report.offersReceived,
          );
      }
      const peer = peers[i];
      const ws = sockets[i];
      if (peer === undefined || ws === undefined || ws.readyState !== WebSocket.OPEN) return;
      ws.send(
        JSON.stringify({
          action: 'announce',
          info_hash: msg.info_hash,
          peer_id: peer.peerId,
          to_peer_id: msg.peer_id,
          offer_id: msg.offer_id,
          answer: sdp('answer', nowMs(), times?.sentAt),
        }),
      );
      return;
    }
    if (msg.answer !== undefined) {
      const times = timesOf(msg.answer);
      if (!firstTime(answersSeen, String(msg.offer_id))) report.duplicateAnswers++;
      if (times !== undefined && times.offerSentAt < countFromMs) report.warmupAnswers++;
      else {
        report.answersReceived++;
        if (measuring && times !== undefined)
          sample(
            crossed(i, msg.peer_id) ? report.crossAnswerLatencyMs : report.answerLatencyMs,
            now - times.sentAt,
            report.answersReceived,
          );
      }
      return;
    }
    if (msg.action === 'announce' && msg.interval !== undefined) {
      report.announced++;
      if (task.mode === 'throughput' && running) announce(i);
      return;
    }
  };

  // Connect with bounded concurrency; a failure is counted, never retried.
  let next = 0;
  const connectOne = (i: number): Promise<void> =>
    new Promise((resolve) => {
      const n = task.first + i;
      peers[i] = { peerId: id('p', n), infoHash: id('h', n % task.swarms) };
      const ws = new WebSocket(task.urls[gatewayOf(n, task.swarms, gateways)] ?? '', {
        localAddress: task.localAddress,
        perMessageDeflate: false,
        handshakeTimeout: 60_000,
      });
      sockets[i] = ws;
      ws.on('message', (data) => onMessage(i, data));
      ws.once('open', () => {
        report.connected++;
        resolve();
      });
      ws.once('error', (err) => {
        note(`connect: ${err.message}`);
        if (ws.readyState !== WebSocket.OPEN) {
          report.connectFailures++;
          resolve();
        }
      });
    });
  await Promise.all(
    Array.from({ length: Math.min(CONNECT_CONCURRENCY, task.count) }, async () => {
      while (next < task.count) await connectOne(next++);
    }),
  );
  process.send?.({ type: 'connected', connected: report.connected });
  const go = await new Promise<Go>((resolve) => {
    process.once('message', (m: Go) => resolve(m));
  });

  if (task.mode === 'idle') {
    // One started announce each, then nothing but pongs.
    for (let i = 0; i < task.count; i++) announce(i, 'started');
    const deadline = Date.now() + 120_000;
    while (report.announced + report.failures < report.connected && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 200));
    process.send?.({ type: 'announced', announced: report.announced });
    await new Promise<void>((resolve) => {
      process.once('message', () => resolve());
    });
  } else if (task.mode === 'throughput') {
    for (let i = 0; i < task.count; i++) announce(i, 'started');
    // Warm up for a fifth of the run, then count.
    await new Promise((r) => setTimeout(r, (task.seconds * 1000) / 5));
    const before = { ...report };
    measuring = true;
    await new Promise((r) => setTimeout(r, task.seconds * 1000));
    running = false;
    // What arrives after the window is not counted.
    report.announced -= before.announced;
    report.failures -= before.failures;
    report.offersReceived -= before.offersReceived;
    report.answersReceived -= before.answersReceived;
    for (const ws of sockets) ws.terminate();
  } else {
    for (let i = 0; i < task.count; i++) announce(i, 'started');
    // The warm-up: what its announces relay is told apart by the send time
    // in each SDP, however late it arrives (under load the tail of the
    // started announces' offers and answers outlasts the warm-up).
    countFromMs = go.countFromMs;
    await new Promise((r) => setTimeout(r, Math.max(0, countFromMs - nowMs())));
    report.offerLatencyMs.length = 0;
    report.answerLatencyMs.length = 0;
    report.crossOfferLatencyMs.length = 0;
    report.crossAnswerLatencyMs.length = 0;
    const counted = { ...report };
    const end = Date.now() + task.seconds * 1000;
    const gapMs = 1000 / task.rate;
    let k = 0;
    let due = performance.now();
    while (Date.now() < end) {
      announce(k++ % task.count);
      report.announcesSent++;
      due += gapMs;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      else if (k % 64 === 0) await new Promise((r) => setImmediate(r));
    }
    // Let the last offers and answers arrive.
    await new Promise((r) => setTimeout(r, 2_000));
    report.announced -= counted.announced;
    report.failures -= counted.failures;
    report.offersReceived -= counted.offersReceived;
    report.answersReceived -= counted.answersReceived;
    report.duplicateOffers -= counted.duplicateOffers;
    report.duplicateAnswers -= counted.duplicateAnswers;
    report.warmupOffers -= counted.warmupOffers;
    report.warmupAnswers -= counted.warmupAnswers;
  }
  for (const ws of sockets) ws.terminate();
  return report;
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m === null ? Number.NaN : Number(m[1]);
}

/** CPU seconds (user + system) the process has used so far. */
function cpuSeconds(pid: number): number {
  // Fields after the command name, which is in parentheses: utime and stime
  // are the 14th and 15th fields of the line, in clock ticks (100 per second).
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function settledRssKiB(pid: number): Promise<number> {
  // The smallest of several samples over a few seconds: after a burst of
  // work the heap shrinks back once the collector has run.
  let min = Infinity;
  for (let i = 0; i < 10; i++) {
    await new Promise((r) => setTimeout(r, 500));
    min = Math.min(min, rssKiB(pid));
  }
  return min;
}

function waitFor(children: ChildProcess[], type: string, timeoutMs: number): Promise<unknown[]> {
  return Promise.all(
    children.map(
      (child) =>
        new Promise<unknown>((resolve, reject) => {
          const timer = setTimeout(
            () => reject(new Error(`no "${type}" from a worker in ${timeoutMs} ms`)),
            timeoutMs,
          );
          const onMessage = (msg: { type?: string }): void => {
            if (msg.type !== type) return;
            clearTimeout(timer);
            child.off('message', onMessage);
            resolve(msg);
          };
          child.on('message', onMessage);
          child.once('exit', (code) => reject(new Error(`worker exited with ${code}`)));
        }),
    ),
  );
}

async function coordinate(): Promise<void> {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: {
      connections: { type: 'string', default: '1000' },
      swarms: { type: 'string' },
      offers: { type: 'string', default: '5' },
      seconds: { type: 'string', default: '10' },
      rate: { type: 'string', default: '500' },
      processes: { type: 'string' },
      pid: { type: 'string' },
      url2: { type: 'string' },
      label: { type: 'string', default: '' },
    },
  });
  const [modeArg, url] = positionals;
  if (
    (modeArg !== 'throughput' && modeArg !== 'latency' && modeArg !== 'idle') ||
    url === undefined
  ) {
    console.error('usage: ws-load.ts throughput|latency|idle URL [options]');
    process.exit(2);
  }
  const mode: Mode = modeArg;
  const connections = Number(values.connections);
  const swarms = Number(values.swarms ?? Math.max(1, Math.floor(connections / 10)));
  const offers = Number(values.offers);
  const seconds = Number(values.seconds);
  const processes = Number(values.processes ?? Math.max(1, Math.ceil(connections / 8000)));
  const pid = values.pid === undefined ? undefined : Number(values.pid);
  if (mode === 'idle' && pid === undefined) {
    console.error('idle needs --pid of the tracker process');
    process.exit(2);
  }
  const per = Math.ceil(connections / processes);
  const baseRss = mode === 'idle' && pid !== undefined ? await settledRssKiB(pid) : Number.NaN;
  const children: ChildProcess[] = [];
  const reports: Promise<WorkerReport>[] = [];
  for (let p = 0; p < processes; p++) {
    const first = p * per;
    const count = Math.min(per, connections - first);
    if (count <= 0) break;
    const child = fork(new URL(import.meta.url).pathname, ['--worker'], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    children.push(child);
    const task: WorkerTask = {
      mode,
      urls: values.url2 === undefined ? [url] : [url, values.url2],
      first,
      count,
      swarms,
      offers: mode === 'idle' ? 0 : offers,
      seconds,
      rate: Number(values.rate) / processes,
      localAddress: `127.0.0.${(p % 250) + 1}`,
      worker: p,
    };
    reports.push(
      new Promise((resolve, reject) => {
        child.on('message', (msg: { type?: string; report?: WorkerReport }) => {
          if (msg.type === 'report' && msg.report !== undefined) resolve(msg.report);
        });
        child.once('exit', (code) => reject(new Error(`worker exited with ${code}`)));
      }),
    );
    child.send(task);
  }
  const kill = (): void => {
    for (const child of children) child.kill('SIGKILL');
  };
  process.once('SIGINT', kill);
  process.once('SIGTERM', kill);
  try {
    const connectedMsgs = (await waitFor(children, 'connected', 600_000)) as {
      connected: number;
    }[];
    const connected = connectedMsgs.reduce((a, m) => a + m.connected, 0);
    let idleRss = Number.NaN;
    let trackerCpu = Number.NaN;
    // Latency mode: the warm-up's offers (2 s) are not counted, by their send time.
    const go: Go = { type: 'go', countFromMs: nowMs() + 2_000 };
    for (const child of children) child.send(go);
    if (mode === 'throughput' && pid !== undefined) {
      // The tracker's CPU over the counted window (the workers warm up for a
      // fifth of the run first): announces per CPU second of the tracker,
      // the figure least moved by whatever else shares the machine.
      await new Promise((r) => setTimeout(r, (seconds * 1000) / 5));
      const before = cpuSeconds(pid);
      await new Promise((r) => setTimeout(r, seconds * 1000));
      trackerCpu = cpuSeconds(pid) - before;
    }
    if (mode === 'idle' && pid !== undefined) {
      await waitFor(children, 'announced', 300_000);
      idleRss = await settledRssKiB(pid);
      for (const child of children) child.send('done');
    }
    const all = await Promise.all(reports);
    const sum = (f: (r: WorkerReport) => number): number => all.reduce((a, r) => a + f(r), 0);
    const latency = (f: (r: WorkerReport) => number[]): { n: number; p50: number; p99: number } => {
      const all_ = all.flatMap(f).sort((a, b) => a - b);
      return { n: all_.length, p50: quantile(all_, 0.5), p99: quantile(all_, 0.99) };
    };
    const result = {
      label: values.label,
      mode,
      url,
      ...(values.url2 === undefined ? {} : { url2: values.url2 }),
      connections,
      connected,
      connectFailures: sum((r) => r.connectFailures),
      swarms,
      offers: mode === 'idle' ? 0 : offers,
      seconds: mode === 'idle' ? 0 : seconds,
      processes: children.length,
      announced: sum((r) => r.announced),
      announcesPerSecond:
        mode === 'idle' ? Number.NaN : Math.round(sum((r) => r.announced) / seconds),
      // Every message the tracker sent (answers to announces, relayed offers
      // and answers, failures): what aquatic_ws_load_test calls responses.
      messagesPerSecond:
        mode === 'idle'
          ? Number.NaN
          : Math.round(
              sum((r) => r.announced + r.offersReceived + r.answersReceived + r.failures) / seconds,
            ),
      trackerCpuSeconds: trackerCpu,
      announcesPerTrackerCpuSecond: Math.round(sum((r) => r.announced) / trackerCpu),
      failures: sum((r) => r.failures),
      offersReceived: sum((r) => r.offersReceived),
      answersReceived: sum((r) => r.answersReceived),
      announcesSent: sum((r) => r.announcesSent),
      warmupOffers: sum((r) => r.warmupOffers),
      warmupAnswers: sum((r) => r.warmupAnswers),
      duplicateOffers: sum((r) => r.duplicateOffers),
      duplicateAnswers: sum((r) => r.duplicateAnswers),
      offerLatencyMs: latency((r) => r.offerLatencyMs),
      answerLatencyMs: latency((r) => r.answerLatencyMs),
      crossOfferLatencyMs: latency((r) => r.crossOfferLatencyMs),
      crossAnswerLatencyMs: latency((r) => r.crossAnswerLatencyMs),
      baseRssKiB: baseRss,
      idleRssKiB: idleRss,
      bytesPerIdleConnection:
        mode === 'idle' ? Math.round(((idleRss - baseRss) * 1024) / Math.max(1, connected)) : NaN,
      errors: [...new Set(all.flatMap((r) => r.errors))].slice(0, 10),
    };
    console.log(JSON.stringify(result));
  } finally {
    kill();
  }
}

if (process.argv.includes('--worker')) {
  process.once('message', (task: WorkerTask) => {
    runWorker(task).then(
      (report) => {
        process.send?.({ type: 'report', report }, () => process.exit(0));
      },
      (err: unknown) => {
        console.error(err);
        process.exit(1);
      },
    );
  });
  // The coordinator gone means the run is over.
  process.once('disconnect', () => process.exit(0));
} else {
  await coordinate();
}
