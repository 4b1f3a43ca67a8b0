// A stand-in for the Kubernetes API server's Lease endpoints (STYLE.md
// "Tests": a mock only for what cannot run here), served over HTTP so the
// real @kubernetes/client-node CoordinationV1Api talks to it: its request
// building, serialization and error mapping are exercised, not faked. It
// enforces what the real server does for these calls: resourceVersion
// optimistic concurrency (409 Conflict), AlreadyExists on create (409), 404
// for a missing Lease, and MicroTime fields with exactly six fractional
// digits (a plain Date's milliseconds are rejected, kubernetes-client/javascript#828).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

interface StoredLease {
  metadata: Record<string, unknown> & { name: string; namespace: string; resourceVersion: string };
  spec: Record<string, unknown>;
}

export interface FakeKubeApi {
  url: string;
  /** The stored Lease as the server holds it (wire JSON), or undefined. */
  lease(namespace: string, name: string): StoredLease | undefined;
  /** Every successful write, in order: who held the lease after it. */
  writes: Array<{ holder: string | undefined; transitions: unknown }>;
  /** Writes refused with 409 (AlreadyExists or a stale resourceVersion). */
  conflicts: number;
  /** Requests refused for a bad MicroTime. */
  rejectedTimes: string[];
  /** While true every request answers 503 (an API server outage for everyone). */
  failing: boolean;
  /** Requests whose bearer token is in this set answer 503 (one pod cut off). */
  cutOff: Set<string>;
  close(): Promise<void>;
}

const MICRO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;
const PATH =
  /^\/apis\/coordination\.k8s\.io\/v1\/namespaces\/([^/]+)\/leases(?:\/([^/?]+))?(?:\?.*)?$/;

function status(res: ServerResponse, code: number, reason: string, message: string): void {
  res.writeHead(code, { 'content-type': 'application/json' });
  res.end(
    JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason, message, code }),
  );
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
}

export async function startFakeKubeApi(): Promise<FakeKubeApi> {
  const leases = new Map<string, StoredLease>();
  let version = 1;
  const api: Omit<FakeKubeApi, 'url' | 'close'> = {
    lease: (ns, name) => leases.get(`${ns}/${name}`),
    writes: [],
    conflicts: 0,
    rejectedTimes: [],
    failing: false,
    cutOff: new Set(),
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? '';
    if (api.failing || api.cutOff.has(token))
      return status(res, 503, 'ServiceUnavailable', 'unavailable');
    const m = PATH.exec(req.url ?? '');
    if (!m) return status(res, 404, 'NotFound', `no route ${req.url}`);
    const ns = decodeURIComponent(m[1]!);
    const name = m[2] === undefined ? undefined : decodeURIComponent(m[2]);
    const send = (code: number, lease: StoredLease): void => {
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', ...lease }));
    };
    if (req.method === 'GET' && name !== undefined) {
      const found = leases.get(`${ns}/${name}`);
      return found ? send(200, found) : status(res, 404, 'NotFound', `leases "${name}" not found`);
    }
    if (req.method !== 'POST' && req.method !== 'PUT')
      return status(res, 405, 'MethodNotAllowed', 'method');
    const body = (await readJson(req)) as {
      metadata?: Record<string, unknown>;
      spec?: Record<string, unknown>;
    };
    const spec = body.spec ?? {};
    for (const field of ['acquireTime', 'renewTime']) {
      const v = spec[field];
      if (v !== undefined && (typeof v !== 'string' || !MICRO_TIME.test(v))) {
        api.rejectedTimes.push(typeof v === 'string' ? v : JSON.stringify(v));
        return status(
          res,
          400,
          'BadRequest',
          `Lease in version "v1" cannot be handled as a Lease: parsing time ${JSON.stringify(v)}`,
        );
      }
    }
    const leaseName =
      req.method === 'POST'
        ? typeof body.metadata?.name === 'string'
          ? body.metadata.name
          : ''
        : name!;
    const key = `${ns}/${leaseName}`;
    const current = leases.get(key);
    if (req.method === 'POST') {
      if (current) {
        api.conflicts++;
        return status(res, 409, 'AlreadyExists', `leases "${leaseName}" already exists`);
      }
    } else {
      if (!current) return status(res, 404, 'NotFound', `leases "${leaseName}" not found`);
      const rv = body.metadata?.resourceVersion;
      if (rv === undefined)
        return status(
          res,
          422,
          'Invalid',
          'metadata.resourceVersion: must be specified for an update',
        );
      if (rv !== current.metadata.resourceVersion) {
        api.conflicts++;
        return status(
          res,
          409,
          'Conflict',
          'the object has been modified; please apply your changes to the latest version and try again',
        );
      }
    }
    const stored: StoredLease = {
      metadata: {
        ...(body.metadata ?? {}),
        name: leaseName,
        namespace: ns,
        resourceVersion: String(++version),
      },
      spec,
    };
    leases.set(key, stored);
    api.writes.push({
      holder: spec.holderIdentity as string | undefined,
      transitions: spec.leaseTransitions,
    });
    send(req.method === 'POST' ? 201 : 200, stored);
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => status(res, 500, 'InternalError', String(err)));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return Object.assign(api, {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  });
}
