// What one slow or hostile client may hold on a service's HTTP listener
// (docs/limits.md): a request arrives whole within a deadline however slowly
// its bytes drip, an idle keep-alive socket is closed, headers have a size
// cap, and the process holds a bounded number of connections. Node's http
// server enforces all four; fastify exposes only part of them, so each
// service spreads fastifyLimits() into its Fastify() options and calls
// capConnections() on the server it built.
import type { Server, ServerOptions } from 'node:http';

export interface HttpLimits {
  /**
   * The request line, headers and body must all have arrived this long after
   * the request began (408 and a close otherwise). Connections that send
   * nothing at all are cut by the same deadline.
   */
  requestTimeoutMs: number;
  /** Idle time allowed on a keep-alive socket between a response and the next request. */
  keepAliveTimeoutMs: number;
  /** Request line plus headers; more is 431 and a close. */
  maxHeaderBytes: number;
  /** Connections this listener holds at once; the next ones are closed on accept. */
  maxConnections: number;
}

/**
 * The admin ports (/healthz, /readyz, /metrics and the gateway's policy admin
 * API): a kubelet and a Prometheus server are their usual clients, so the
 * limits are fixed rather than configured.
 */
export const ADMIN_HTTP_LIMITS: Readonly<HttpLimits> = Object.freeze({
  requestTimeoutMs: 10_000,
  keepAliveTimeoutMs: 5_000,
  maxHeaderBytes: 16_384,
  maxConnections: 256,
});

/**
 * How often Node looks for requests past their deadline. Its default is 30 s,
 * which lets a drip outlive a 10 s deadline by up to 30 s more; a quarter of
 * the deadline, at most 1 s, keeps the overshoot small. The walk is over
 * in-progress requests only, in native code.
 */
export function checkingIntervalMs(requestTimeoutMs: number): number {
  return Math.min(1000, Math.max(25, Math.floor(requestTimeoutMs / 4)));
}

/** Spread into Fastify({ ... }): fastify sets requestTimeout and keepAliveTimeout itself and passes `http` to createServer. */
export function fastifyLimits(limits: HttpLimits): {
  requestTimeout: number;
  keepAliveTimeout: number;
  http: ServerOptions;
} {
  return {
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    http: {
      // A GET has no body: its headers are the whole request, so one deadline serves both.
      headersTimeout: limits.requestTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      maxHeaderSize: limits.maxHeaderBytes,
      connectionsCheckingInterval: checkingIntervalMs(limits.requestTimeoutMs),
    },
  };
}

/** The description of the symbol under which Node keeps its deadline timer on an http.Server (lib/_http_server.js). */
const CHECKER_SYMBOL = 'http.server.connectionsCheckingInterval';

interface NodeInterval {
  _onTimeout: (this: void) => void;
  _repeat: number | null;
}

function isNodeInterval(value: unknown): value is NodeInterval {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Partial<NodeInterval>)._onTimeout === 'function' &&
    typeof (value as Partial<NodeInterval>)._repeat === 'number'
  );
}

/**
 * Makes Node judge the request deadline (`requestTimeoutMs`) after the event
 * loop has read what arrived, not before (docs/limits.md "When the event loop
 * is busy"). Node checks the deadline in a timer, and timers run before the
 * loop reads the sockets that became readable meanwhile: after a busy
 * stretch (a burst of connections or messages, a long garbage collection on
 * a loaded machine) a request that had arrived in time, waiting unread in
 * the kernel, was answered 408, and a WebSocket client reconnecting in a
 * burst was refused for the gateway's own lag. Here the timer only schedules
 * Node's own check with setImmediate, which runs after the loop's reads, so
 * the deadline judges requests that had not arrived. Node keeps the timer
 * under an internal symbol; on a Node without it the server keeps Node's
 * timing (http-limits.test.ts of the gateway fails then).
 */
export function judgeDeadlinesAfterReads(server: Server): void {
  server.on('listening', () => {
    // Node's own 'listening' listener, registered by its constructor, has set the timer by now.
    const holder = server as unknown as Record<symbol, unknown>;
    const key = Object.getOwnPropertySymbols(server).find((s) => s.description === CHECKER_SYMBOL);
    const timer = key === undefined ? undefined : holder[key];
    if (key === undefined || !isNodeInterval(timer) || timer._repeat === null) return;
    const check = timer._onTimeout;
    clearInterval(timer as unknown as NodeJS.Timeout);
    // Node's close() clears whatever timer is under the symbol: this one.
    holder[key] = setInterval(() => setImmediate(check), timer._repeat).unref();
  });
}

/**
 * Past `maxConnections` Node destroys each new socket on accept and emits
 * 'drop'; the connections already held keep being served. `onDrop` counts
 * them (no per-connection logging: a flood would become a log flood).
 */
export function capConnections(server: Server, limits: HttpLimits, onDrop?: () => void): void {
  server.maxConnections = limits.maxConnections;
  if (onDrop !== undefined) server.on('drop', onDrop);
}
