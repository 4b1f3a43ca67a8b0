// One run of the reliability simulation (RELIABILITY.md "Simulation"): a
// population of clients of each family announcing to a gateway policy in
// front of a store of finite capacity, through one disturbance.
import {
  newClientMemory,
  nextAnnounceDelay,
  type Answer,
  type ClientMemory,
  type ClientOptions,
  type Family,
  type Transport,
} from './clients.ts';
import { EventQueue, Rng } from './events.ts';
import {
  GatewayPolicy,
  type AnnounceKind,
  type GatewayOptions,
  type PolicyName,
} from './gateway.ts';
import {
  Recorder,
  summarize,
  type Bin,
  type Outcome,
  type RecoveryCriteria,
  type Summary,
} from './metrics.ts';
import { Store, type Outage, type StoreOptions } from './store.ts';

export interface PopulationOptions {
  /** Live peers before the disturbance. */
  readonly peers: number;
  /** Share of each client family (weights, normalised). */
  readonly mix: Readonly<Record<Family, number>>;
  /** Share of each family's peers that announce over UDP. */
  readonly udpShare: Readonly<Record<Family, number>>;
  /** Share of peers that are seeders (at the start, and among peers that join). */
  readonly seederShare: number;
  readonly meanSessionSeconds: number;
  readonly meanDownloadSeconds: number;
}

export type Disturbance =
  | { readonly kind: 'none'; readonly at: number }
  /** Traffic times `factor` from `at`: the extra peers join over `rampSeconds`, and churn scales with them. */
  | {
      readonly kind: 'step';
      readonly at: number;
      readonly factor: number;
      readonly rampSeconds: number;
    }
  | { readonly kind: 'outage'; readonly at: number; readonly seconds: number };

export interface SimOptions {
  readonly seed: number;
  readonly durationSeconds: number;
  readonly binSeconds: number;
  readonly population: PopulationOptions;
  readonly store: Omit<StoreOptions, 'outages'>;
  readonly gateway: GatewayOptions;
  readonly clients: ClientOptions;
  readonly policy: PolicyName;
  readonly disturbance: Disturbance;
  readonly recovery: RecoveryCriteria;
}

/** Every announce that arrived, by what became of it; `inFlight` were unanswered when the run ended. */
export interface Counts {
  arrivals: number;
  ok: number;
  shed: number;
  failed: number;
  inFlight: number;
  /** Store entries of live peers that lapsed, after the disturbance began. */
  expiredWhileAlive: number;
  storeWrites: number;
}

export interface SimResult {
  readonly options: SimOptions;
  readonly counts: Counts;
  readonly summary: Summary;
  readonly bins: readonly Bin[];
  readonly events: number;
}

interface Peer {
  readonly family: Family;
  readonly transport: Transport;
  readonly memory: ClientMemory;
  seeder: boolean;
  alive: boolean;
  /** A started or completed event not yet acknowledged by a normal answer. */
  pendingEvent: boolean;
  /** When the store forgets this peer; -Infinity when it holds none. */
  storeExpiry: number;
  expiryCheckPending: boolean;
  /** Bumped on every reschedule, so a superseded timer does nothing. */
  gen: number;
}

function faultWindow(d: Disturbance): { start: number; end: number } {
  switch (d.kind) {
    case 'none':
      return { start: d.at, end: d.at };
    case 'step':
      return { start: d.at, end: d.at };
    case 'outage':
      return { start: d.at, end: d.at + d.seconds };
  }
}

function outagesOf(d: Disturbance): Outage[] {
  return d.kind === 'outage' ? [{ start: d.at, end: d.at + d.seconds }] : [];
}

export function simulate(options: SimOptions): SimResult {
  const { population: pop, gateway: gw, disturbance: dist } = options;
  const q = new EventQueue();
  const rng = new Rng(options.seed);
  const store = new Store({ ...options.store, outages: outagesOf(dist) });
  const policy = new GatewayPolicy(options.policy, gw);
  const rec = new Recorder(options.binSeconds, options.durationSeconds);
  const fault = faultWindow(dist);
  const counts: Counts = {
    arrivals: 0,
    ok: 0,
    shed: 0,
    failed: 0,
    inFlight: 0,
    expiredWhileAlive: 0,
    storeWrites: 0,
  };
  let alive = 0;
  let present = 0;

  const schedule = (peer: Peer, delay: number): void => {
    const gen = ++peer.gen;
    q.after(delay, () => {
      if (peer.gen === gen && peer.alive) announce(peer, false);
    });
  };

  const checkExpiry = (peer: Peer): void => {
    if (peer.expiryCheckPending) return;
    peer.expiryCheckPending = true;
    q.at(peer.storeExpiry, () => {
      peer.expiryCheckPending = false;
      if (!peer.alive) return;
      if (peer.storeExpiry > q.now) {
        checkExpiry(peer);
        return;
      }
      present--;
      if (q.now >= fault.start) counts.expiredWhileAlive++;
    });
  };

  const write = (peer: Peer, stopped: boolean, interval: number): void => {
    counts.storeWrites++;
    if (stopped) {
      peer.storeExpiry = -Infinity;
      return;
    }
    if (peer.alive && peer.storeExpiry <= q.now) present++;
    peer.storeExpiry = q.now + policy.lifetimeFor(interval);
    if (peer.alive) checkExpiry(peer);
  };

  const respond = (
    peer: Peer,
    stopped: boolean,
    answer: Answer,
    outcome: Outcome,
    arrival: number,
  ): void => {
    counts[outcome]++;
    rec.answer(q.now, outcome, q.now - arrival);
    if (stopped || !peer.alive) return;
    // A shed answer looks like a success too: the client will not send its event again.
    if (answer.kind !== 'failure') peer.pendingEvent = false;
    schedule(
      peer,
      nextAnnounceDelay(peer.family, peer.transport, answer, peer.memory, rng, options.clients),
    );
  };

  const announce = (peer: Peer, stopped: boolean): void => {
    const now = q.now;
    counts.arrivals++;
    rec.arrival(now);
    const kind: AnnounceKind =
      stopped || peer.pendingEvent ? 'event' : peer.seeder ? 'seeder' : 'leecher';
    const interval = policy.promisedInterval(rng);
    if (!store.down(now) && policy.shouldShed(kind, store.depth(now))) {
      respond(peer, stopped, policy.shedAnswer(rng), 'shed', now);
      return;
    }
    const admission = store.admit(now);
    if (admission.kind === 'refused') {
      respond(peer, stopped, policy.retryLater(), 'failed', now);
      return;
    }
    const depth = store.depth(now);
    rec.depth(now, depth);
    const { writtenAt, answerAt, ok } = admission;
    if (writtenAt !== undefined) {
      q.at(writtenAt, () => {
        // The store's latency is the wait: a real batch's own work is far below LOAD_BATCH_TARGET_MS.
        policy.controller.observeBatch(writtenAt - now - store.serviceSeconds, depth);
        write(peer, stopped, interval);
      });
    }
    counts.inFlight++;
    q.at(answerAt, () => {
      counts.inFlight--;
      if (ok) respond(peer, stopped, policy.okAnswer(interval), 'ok', now);
      else respond(peer, stopped, policy.retryLater(), 'failed', now);
    });
  };

  const depart = (peer: Peer): void => {
    peer.alive = false;
    alive--;
    if (peer.storeExpiry > q.now) present--;
    peer.gen++;
    announce(peer, true);
  };

  const newPeer = (seeder: boolean): Peer => {
    const family = rng.pick(pop.mix);
    const peer: Peer = {
      family,
      transport: rng.chance(pop.udpShare[family]) ? 'udp' : 'http',
      memory: newClientMemory(),
      seeder,
      alive: true,
      pendingEvent: false,
      storeExpiry: -Infinity,
      expiryCheckPending: false,
      gen: 0,
    };
    alive++;
    q.after(rng.exponential(pop.meanSessionSeconds), () => depart(peer));
    if (!seeder) {
      q.after(rng.exponential(pop.meanDownloadSeconds), () => {
        if (!peer.alive) return;
        peer.seeder = true;
        peer.pendingEvent = true;
        announce(peer, false);
      });
    }
    return peer;
  };

  const join = (): void => {
    const peer = newPeer(rng.chance(pop.seederShare));
    peer.pendingEvent = true;
    announce(peer, false);
  };

  // The peers already there: each announced once before t=0, at a phase spread over its period.
  for (let i = 0; i < pop.peers; i++) {
    const peer = newPeer(rng.chance(pop.seederShare));
    const interval = policy.promisedInterval(rng);
    const answer = policy.okAnswer(interval);
    const period = nextAnnounceDelay(
      peer.family,
      peer.transport,
      answer,
      peer.memory,
      rng,
      options.clients,
    );
    const next = rng.uniform(0, period);
    peer.storeExpiry = next - period + policy.lifetimeFor(interval);
    present++;
    checkExpiry(peer);
    schedule(peer, next);
  }

  const targetPeers = (t: number): number =>
    dist.kind === 'step' && t >= dist.at ? pop.peers * dist.factor : pop.peers;
  const nextJoin = (): void => {
    q.after(rng.exponential(pop.meanSessionSeconds / targetPeers(q.now)), () => {
      join();
      nextJoin();
    });
  };
  nextJoin();
  if (dist.kind === 'step') {
    const extra = Math.round(pop.peers * (dist.factor - 1));
    for (let i = 0; i < extra; i++) q.at(dist.at + rng.uniform(0, dist.rampSeconds), join);
  }

  const controlPeriod = gw.LOAD_SAMPLE_MS / 1000;
  const control = (): void => {
    policy.controller.sample(q.now, store.depth(q.now), store.down(q.now));
    q.after(controlPeriod, control);
  };
  q.after(controlPeriod, control);
  const sample = (): void => {
    rec.sample(q.now, alive === 0 ? 1 : present / alive, alive, policy.baseInterval);
    q.after(options.binSeconds, sample);
  };
  q.after(options.binSeconds, sample);

  q.runUntil(options.durationSeconds);
  return {
    options,
    counts,
    summary: summarize(rec, fault.start, fault.end, options.recovery),
    bins: rec.bins,
    events: q.ran,
  };
}
