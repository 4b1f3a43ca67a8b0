// A stand-in for the Kubernetes API server's Lease endpoints (docs/conventions.md
// "Tests": a mock only for what cannot run here), served over HTTP so the
// real @kubernetes/client-node CoordinationV1Api talks to it: its request
// building, serialization and error mapping are exercised, not faked. It
// enforces what the real server does for these calls: resourceVersion
// optimistic concurrency (409 Conflict), AlreadyExists on create (409), 404
// for a missing Lease, and MicroTime fields with exactly six fractional
// digits (a plain Date's milliseconds are rejected, kubernetes-client/javascript#828).
// Given a Role (its namespace and rules, e.g. as the Helm chart renders it),
// it also authorizes each call as RBAC would: 403 Forbidden unless a rule
// grants the verb on leases (with that name, when the rule names any) in that
// namespace; tests/src/helm-lease-rbac.test.ts runs the elector under the
// chart's Role.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

interface StoredLease {
  metadata: Record<string, unknown> & { name: string; namespace: string; resourceVersion: string };
  spec: Record<string, unknown>;
}

/** One rule of an rbac.authorization.k8s.io/v1 Role (PolicyRule). */
export interface PolicyRule {
  apiGroups?: string[];
  resources?: string[];
  resourceNames?: string[];
  verbs: string[];
}

export interface FakeKubeApiOptions {
  /** Authorize every call against this Role; without it every call is allowed. */
  role?: { namespace: string; rules: readonly PolicyRule[] };
}

/** A call as RBAC sees it: verb (get, list, create, update, patch, delete), namespace, name. */
export interface KubeCall {
  verb: string;
  namespace: string;
  name: string | undefined;
  allowed: boolean;
  /** The bearer token it carried (the tests give each pod its own). */
  user: string;
  /** When the server handled it (Date.now()). */
  at: number;
  /** Its place among every call and write, in the order the server handled them (a GET answers in the tick it is counted, so a read after a write saw it). */
  seq: number;
}

export interface FakeKubeApi {
  url: string;
  /** The stored Lease as the server holds it (wire JSON), or undefined. */
  lease(namespace: string, name: string): StoredLease | undefined;
  /** Every successful write, in order: who held the lease after it, who wrote it (bearer token), when it was stored (Date.now()). */
  writes: Array<{
    holder: string | undefined;
    transitions: unknown;
    user: string;
    at: number;
    seq: number;
  }>;
  /** Writes refused with 409 (AlreadyExists or a stale resourceVersion). */
  conflicts: number;
  /** Requests refused for a bad MicroTime. */
  rejectedTimes: string[];
  /** While true every request answers 503 (an API server outage for everyone). */
  failing: boolean;
  /** Requests answered 503 because of `failing` or `cutOff`. */
  unavailable: number;
  /** Requests whose bearer token is in this set answer 503 (one pod cut off). */
  cutOff: Set<string>;
  /** Every Lease call that reached authorization, in order. */
  calls: KubeCall[];
  close(): Promise<void>;
}

const VERBS: Record<string, string> = {
  GET: 'get',
  POST: 'create',
  PUT: 'update',
  PATCH: 'patch',
  DELETE: 'delete',
};

/**
 * RBAC's rule match (kubernetes/plugin/pkg/auth/authorizer/rbac): a rule
 * with resourceNames never grants create or list, whose names are not known
 * when the request is authorized.
 */
function allows(rule: PolicyRule, verb: string, name: string | undefined): boolean {
  const has = (list: readonly string[] | undefined, v: string): boolean =>
    list !== undefined && (list.includes(v) || list.includes('*'));
  if (!has(rule.apiGroups, 'coordination.k8s.io')) return false;
  if (!has(rule.resources, 'leases')) return false;
  if (!has(rule.verbs, verb)) return false;
  if (rule.resourceNames === undefined || rule.resourceNames.length === 0) return true;
  return name !== undefined && rule.resourceNames.includes(name);
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

export async function startFakeKubeApi(options: FakeKubeApiOptions = {}): Promise<FakeKubeApi> {
  const leases = new Map<string, StoredLease>();
  let version = 1;
  let seq = 0;
  const api: Omit<FakeKubeApi, 'url' | 'close'> = {
    lease: (ns, name) => leases.get(`${ns}/${name}`),
    writes: [],
    conflicts: 0,
    rejectedTimes: [],
    failing: false,
    unavailable: 0,
    cutOff: new Set(),
    calls: [],
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? '';
    if (api.failing || api.cutOff.has(token)) {
      api.unavailable++;
      return status(res, 503, 'ServiceUnavailable', 'unavailable');
    }
    const m = PATH.exec(req.url ?? '');
    if (!m) return status(res, 404, 'NotFound', `no route ${req.url}`);
    const ns = decodeURIComponent(m[1]!);
    const name = m[2] === undefined ? undefined : decodeURIComponent(m[2]);
    const verb =
      req.method === 'GET' && name === undefined ? 'list' : (VERBS[req.method ?? ''] ?? '');
    const role = options.role;
    const allowed =
      role === undefined ||
      (role.namespace === ns && role.rules.some((r) => allows(r, verb, name)));
    api.calls.push({ verb, namespace: ns, name, allowed, user: token, at: Date.now(), seq: ++seq });
    if (!allowed) {
      return status(
        res,
        403,
        'Forbidden',
        `leases.coordination.k8s.io${name === undefined ? '' : ` "${name}"`} is forbidden: cannot ${verb} resource "leases" in API group "coordination.k8s.io" in the namespace "${ns}"`,
      );
    }
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
      user: token,
      at: Date.now(),
      seq: ++seq,
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
