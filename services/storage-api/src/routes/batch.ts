// POST /v1/batch (docs/storage-api.md "The batch"): the gateways' announces
// and scrapes, binary both ways; every op runs at once and fails alone.
import type { FastifyInstance } from 'fastify';
import { isProtocolError } from '@shoal/protocol';
import {
  ROUTES,
  STORAGE_RPC_CONTENT_TYPE,
  STORAGE_RPC_VERSION,
  STORAGE_RPC_VERSION_HEADER,
  SUPPORTED_BATCH_VERSIONS as SUPPORTED_VERSIONS,
} from '@shoal/storage-api-contract';
import {
  STORAGE_RPC_LIFETIME_HEADER,
  STORAGE_RPC_LOAD_HEADER,
  decodeBatchRequest,
  encodeBatchResponse,
  formatLoadReport,
  parseLifetimeHeader,
  isWsOp,
  peekBatchVersion,
  type RpcOp,
  type RpcPeerOp,
  type RpcResult,
  type RpcWsOp,
} from '@shoal/protocol/storage-rpc';
import { isStoreError } from '@shoal/storage';
import type { WsSwarmStore } from '@shoal/storage/ws';
import type { Operation } from '../metrics.ts';
import { ApiError, apiErrors } from '../errors.ts';
import { codeOf, type RouteContext } from './context.ts';

export interface BatchRouteOptions extends RouteContext {
  /** The gateways' WebSocket peers (the ws ops; docs/webtorrent.md "The split topology"). */
  ws: WsSwarmStore;
  limits: { maxOps: number; maxScrapeHashes: number };
  /** The range a promised peer lifetime is clamped into (docs/load.md). */
  lifetime: { minSeconds: number; maxSeconds: number };
  /** What counts as load 1 in the x-shoal-load report. */
  load: { batchTargetMs: number; queueTargetOps: number };
}

// eslint-disable-next-line @typescript-eslint/require-await
export async function batchRoutes(api: FastifyInstance, ctx: BatchRouteOptions): Promise<void> {
  const { store, metrics, log, peerDriver, limits, lifetime, load, ws } = ctx;

  /** One WebSocket op against the WebSocket swarms, failing alone as a peer op does. */
  async function runWs(op: RpcWsOp): Promise<RpcResult> {
    const operation = WS_OPERATION[op.op];
    const start = performance.now();
    try {
      switch (op.op) {
        case 'wsAnnounce': {
          const r = await ws.announce({
            infoHash: op.infoHash,
            peerId: op.peerId,
            // WebSocket peers have no address: the gateway holding the socket is their address.
            family: 4,
            address: NO_ADDRESS,
            port: 0,
            seeder: op.seeder,
            event: op.event,
            numWant: op.numWant,
            withPeerIds: false,
            lifetimeSeconds: op.lifetimeSeconds,
            gateway: op.gateway,
          });
          return {
            ok: true,
            op: 'wsAnnounce',
            seeders: r.seeders,
            leechers: r.leechers,
            downloaded: r.downloaded,
            targets: r.targets,
          };
        }
        case 'wsScrape':
          return { ok: true, op: 'wsScrape', counts: await ws.scrape(op.infoHashes) };
        case 'wsHolder': {
          const gateway = await ws.holder(op.infoHash, op.peerId);
          return gateway === undefined
            ? { ok: true, op: 'wsHolder' }
            : { ok: true, op: 'wsHolder', gateway };
        }
        case 'wsLeave':
          await ws.leave(op.gateway, op.peers);
          return { ok: true, op: 'wsLeave' };
      }
    } catch (err) {
      metrics.error(ws.driver, operation, codeOf(err));
      if (!isStoreError(err)) log.error({ err, operation }, 'store call failed unexpectedly');
      return { ok: false, code: codeOf(err) };
    } finally {
      metrics.observe(ws.driver, operation, start);
    }
  }

  /** Store operations of every batch in flight in this process. */
  let inFlightOps = 0;
  api.post(ROUTES.batch, { config: { endpoint: 'batch' } }, async (request, reply) => {
    const body = request.body;
    if (!Buffer.isBuffer(body))
      throw new ApiError('RPC_ERR_BAD_CONTENT_TYPE', STORAGE_RPC_CONTENT_TYPE);
    const header = request.headers[STORAGE_RPC_VERSION_HEADER];
    const version = header === undefined ? peekBatchVersion(body) : Number(header);
    if (version !== undefined && !SUPPORTED_VERSIONS.includes(version)) {
      return reply.code(apiErrors.RPC_ERR_VERSION.httpStatus).send({
        code: 'RPC_ERR_VERSION',
        message: `${apiErrors.RPC_ERR_VERSION.message}: supported ${SUPPORTED_VERSIONS.join(', ')}`,
        supported: SUPPORTED_VERSIONS,
      });
    }
    let ops: RpcOp[];
    try {
      ops = decodeBatchRequest(body, limits);
    } catch (err) {
      if (!isProtocolError(err)) throw err;
      if (
        err.code === 'PROTO_ERR_RPC_TOO_MANY_OPS' ||
        err.code === 'PROTO_ERR_RPC_TOO_MANY_HASHES'
      ) {
        throw new ApiError('RPC_ERR_TOO_LARGE', err.message);
      }
      if (err.code === 'PROTO_ERR_RPC_VERSION') {
        return reply.code(400).send({
          code: 'RPC_ERR_VERSION',
          message: apiErrors.RPC_ERR_VERSION.message,
          supported: SUPPORTED_VERSIONS,
        });
      }
      throw new ApiError('RPC_ERR_BAD_BODY', err.code);
    }
    metrics.batchOps(ops.length);
    // docs/load.md: a promise outside the range is cut into it; none means the store's own lifetime.
    const promised = parseLifetimeHeader(request.headers[STORAGE_RPC_LIFETIME_HEADER]);
    if (promised !== undefined) {
      const lifetimeSeconds = Math.min(
        lifetime.maxSeconds,
        Math.max(lifetime.minSeconds, promised),
      );
      for (const op of ops) if (op.op === 'announce') op.lifetimeSeconds = lifetimeSeconds;
    }
    inFlightOps += ops.length;
    const queued = inFlightOps;
    const started = performance.now();
    // The WebSocket ops run beside the peer ops; each result goes back to its op's place.
    const peerOps: RpcPeerOp[] = [];
    const peerAt: number[] = [];
    const wsResults: Array<Promise<RpcResult>> = [];
    const wsAt: number[] = [];
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!;
      if (isWsOp(op)) {
        wsAt.push(i);
        wsResults.push(runWs(op));
      } else {
        peerAt.push(i);
        peerOps.push(op);
      }
    }
    // Every op runs at once and fails alone: one bad swarm never fails the batch.
    const [outcomes, wsDone] = await Promise.all([
      peerOps.length === 0
        ? []
        : store.batch(peerOps, {
            onOp: (operation, startMs, err) => {
              metrics.observe(peerDriver, operation, startMs);
              if (err !== undefined) {
                metrics.error(peerDriver, operation, codeOf(err));
                if (!isStoreError(err))
                  log.error({ err, operation }, 'store call failed unexpectedly');
              }
            },
          }),
      Promise.all(wsResults),
    ]).finally(() => {
      inFlightOps -= ops.length;
    });
    reply.header(
      STORAGE_RPC_LOAD_HEADER,
      formatLoadReport({
        latency: (performance.now() - started) / load.batchTargetMs,
        queue: queued / load.queueTargetOps,
      }),
    );
    const results = new Array<RpcResult>(ops.length);
    for (let k = 0; k < wsAt.length; k++) results[wsAt[k]!] = wsDone[k]!;
    outcomes.forEach((o, k) => {
      const i = peerAt[k]!;
      if (!o.ok) {
        results[i] = { ok: false, code: codeOf(o.error) };
        return;
      }
      if (o.op === 'scrape') {
        results[i] = { ok: true, op: 'scrape', counts: o.counts };
        return;
      }
      const r = o.result;
      const op = peerOps[k];
      results[i] = {
        ok: true,
        op: 'announce',
        seeders: r.seeders,
        leechers: r.leechers,
        downloaded: r.downloaded,
        ...(r.partialSeeds === undefined ? {} : { partialSeeds: r.partialSeeds }),
        peers: r.peers,
        // A store that keeps no peer ids (Redis by default) answers undefined:
        // that travels as "no ids" and the gateway writes peers without `peer id`.
        peerIds: op?.op === 'announce' && op.withPeerIds ? r.peerIds : undefined,
      };
    });
    reply.header('content-type', STORAGE_RPC_CONTENT_TYPE);
    reply.header(STORAGE_RPC_VERSION_HEADER, String(STORAGE_RPC_VERSION));
    // A store answer the format cannot carry is that op's coded error, never
    // the batch's (docs/storage-api.md "Errors per op").
    return reply.send(
      encodeBatchResponse(results, ops, {
        onInvalid: (i, err) => {
          const op = ops[i];
          const operation: Operation =
            op === undefined ? 'announce' : isWsOp(op) ? WS_OPERATION[op.op] : op.op;
          metrics.error(
            op !== undefined && isWsOp(op) ? ws.driver : peerDriver,
            operation,
            err.code,
          );
          log.error(
            { err, code: err.code, operation },
            'store answer does not fit the batch format',
          );
        },
      }),
    );
  });
}

const WS_OPERATION: Readonly<Record<RpcWsOp['op'], Operation>> = {
  wsAnnounce: 'ws_announce',
  wsScrape: 'ws_scrape',
  wsHolder: 'ws_holder',
  wsLeave: 'ws_leave',
};
const NO_ADDRESS = Buffer.alloc(4);
