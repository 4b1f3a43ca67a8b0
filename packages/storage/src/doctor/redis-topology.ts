// Doctor checks of a Redis topology (docs/redis.md): a Sentinel set's
// quorum, replicas and primary; a Cluster's state and nodes; each ring shard.
// Every server found is then checked as one node (redis.ts).
import { parseAddress, type HostPort } from '../redis/config.ts';
import { backendSpecs, redisIdentity } from '../redis/connection.ts';
import type { RedisTopologyConfig } from '../open/config.ts';
import {
  checkRedisNode,
  connectRedis,
  parseInfo,
  redisConnectFailure,
  type Conn,
} from './redis.ts';
import { addr, describeError, durable, stoppedAnswering, type Role, type Run } from './run.ts';

type Reply = string | number | null | Reply[];

/** SENTINEL REPLICAS answers field/value lists (RESP2) or maps (RESP3). */
function fields(entry: unknown): Map<string, string> {
  const out = new Map<string, string>();
  if (Array.isArray(entry)) {
    for (let i = 0; i + 1 < entry.length; i += 2) out.set(String(entry[i]), String(entry[i + 1]));
  } else if (entry !== null && typeof entry === 'object') {
    for (const [k, v] of Object.entries(entry)) out.set(k, String(v));
  }
  return out;
}

async function checkSentinelSet(
  run: Run,
  config: RedisTopologyConfig,
  masterName: string,
  sentinels: HostPort[],
  role: Role,
  label: string,
): Promise<void> {
  const sentinelAuth = redisIdentity(config, 'sentinel');
  const dataAuth = redisIdentity(config, 'data');
  const primaries = new Map<string, HostPort>();
  let reachable = 0;
  let replicasReported = false;
  await Promise.all(
    sentinels.map(async (s) => {
      const where = `Sentinel at ${addr(s)}`;
      const name = `sentinel ${addr(s)} quorum`;
      let conn: Conn;
      try {
        conn = await connectRedis(run, s, sentinelAuth);
      } catch (err) {
        run.add(
          name,
          'fail',
          `${redisConnectFailure(err, where, sentinelAuth, run.remaining())}${label}`,
        );
        return;
      }
      reachable++;
      try {
        const { client } = conn;
        try {
          const ok = (await run.bounded(
            client.call('SENTINEL', 'CKQUORUM', masterName),
            'SENTINEL CKQUORUM',
          )) as Reply;
          run.add(name, 'ok', `${where} for master set ${masterName}: ${String(ok)}`);
        } catch (err) {
          run.add(name, 'fail', `${where} for master set ${masterName}: ${describeError(err)}`);
        }
        const master = (await run.bounded(
          client.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', masterName),
          'SENTINEL GET-MASTER-ADDR-BY-NAME',
        )) as Reply;
        if (Array.isArray(master) && master.length === 2) {
          const p = { host: String(master[0]), port: Number(master[1]) };
          primaries.set(addr(p), p);
        }
        if (!replicasReported) {
          // An unknown master name errors here too; CKQUORUM above already said so.
          const replicas: unknown = await run
            .bounded<unknown>(client.call('SENTINEL', 'REPLICAS', masterName), 'SENTINEL REPLICAS')
            .catch(() => undefined);
          if (!replicasReported && Array.isArray(replicas)) {
            replicasReported = true;
            const list = replicas.map(fields);
            const healthy = list.filter(
              (r) =>
                !/s_down|o_down|disconnected/.test(r.get('flags') ?? '') &&
                r.get('master-link-status') !== 'err',
            );
            const names = list
              .map(
                (r) => `${r.get('ip') ?? '?'}:${r.get('port') ?? '?'} (${r.get('flags') ?? '?'})`,
              )
              .join(', ');
            run.add(
              `sentinel ${masterName} replicas`,
              healthy.length === 0 ? (durable(role) ? 'fail' : 'warn') : 'ok',
              healthy.length === 0
                ? `the sentinels know no healthy replica of ${masterName}${names === '' ? '' : ` (${names})`}: a failover has nothing to promote`
                : `${where} knows ${list.length} replica${list.length === 1 ? '' : 's'} of ${masterName}, ${healthy.length} healthy: ${names}`,
            );
          }
        }
      } catch (err) {
        stoppedAnswering(run, name, where, err);
      } finally {
        conn.close();
      }
    }),
  );
  const total = sentinels.length;
  run.add(
    `sentinel ${masterName} reachable`,
    reachable === 0 ? 'fail' : reachable < total ? 'warn' : 'ok',
    reachable === 0
      ? `none of the ${total} configured sentinels answers: the primary of ${masterName} cannot be found${label}`
      : `${reachable} of ${total} configured sentinel${total === 1 ? '' : 's'} answer${reachable === 1 ? 's' : ''}${reachable < total ? ': fix or remove the others (REDIS_SENTINELS)' : ''}`,
  );
  if (primaries.size > 1) {
    run.add(
      `sentinel ${masterName} primary`,
      'warn',
      `the sentinels disagree on the primary of ${masterName}: ${[...primaries.keys()].join(', ')} (a failover in progress, or a split)`,
    );
  }
  const primary = primaries.values().next().value;
  if (primary === undefined) {
    if (reachable > 0)
      run.add(
        `sentinel ${masterName} primary`,
        'fail',
        `no sentinel knows a primary for master set ${masterName} (REDIS_MASTER_NAME)`,
      );
    return;
  }
  await checkRedisNode(
    run,
    primary,
    dataAuth,
    role,
    'primary',
    `, primary of ${masterName} per the sentinels${label}`,
  );
}

/** CLUSTER NODES line: `<id> <ip:port@cport[,hostname]> <flags> ...`. */
function clusterNodes(text: string): Array<{ node: HostPort; flags: string[] }> {
  const out: Array<{ node: HostPort; flags: string[] }> = [];
  for (const line of text.split('\n')) {
    const parts = line.trim().split(' ');
    if (parts.length < 3) continue;
    const address = (parts[1] ?? '').split('@')[0] ?? '';
    try {
      out.push({ node: parseAddress(address), flags: (parts[2] ?? '').split(',') });
    } catch {
      // ":0" for a node that has not learnt its own address yet
    }
  }
  return out;
}

async function checkCluster(
  run: Run,
  config: RedisTopologyConfig,
  seeds: HostPort[],
  role: Role,
): Promise<void> {
  const auth = redisIdentity(config, 'data');
  auth.db = 0;
  let text: string | undefined;
  let state: string | undefined;
  const failures: string[] = [];
  for (const seed of seeds) {
    let conn: Conn;
    try {
      conn = await connectRedis(run, seed, auth);
    } catch (err) {
      failures.push(redisConnectFailure(err, `seed ${addr(seed)}`, auth, run.remaining()));
      continue;
    }
    try {
      text = String(await run.bounded(conn.client.call('CLUSTER', 'NODES'), 'CLUSTER NODES'));
      state = parseInfo(
        String(await run.bounded(conn.client.call('CLUSTER', 'INFO'), 'CLUSTER INFO')),
      ).get('cluster_state');
      break;
    } catch (err) {
      failures.push(`seed ${addr(seed)}: ${describeError(err)}`);
    } finally {
      conn.close();
    }
  }
  if (text === undefined) {
    run.add(
      'redis cluster',
      'fail',
      `no cluster seed (REDIS_ADDRESSES) answers: ${failures.join('; ')}`,
    );
    return;
  }
  const nodes = clusterNodes(text);
  run.add(
    'redis cluster',
    state === 'ok' ? 'ok' : 'fail',
    state === 'ok'
      ? `the cluster is up (cluster_state ok) with ${nodes.filter((n) => n.flags.includes('master')).length} primaries and ${nodes.filter((n) => n.flags.includes('slave')).length} replicas`
      : `cluster_state is ${state ?? 'unknown'}: some hash slots are not served, announces of their swarms fail`,
  );
  await Promise.all(
    nodes.map(async ({ node, flags }) => {
      if (flags.includes('fail') || flags.includes('noaddr')) {
        run.add(
          `redis ${addr(node)} connection`,
          'fail',
          `the cluster marks node ${addr(node)} as ${flags.join(',')}`,
        );
        return;
      }
      await checkRedisNode(
        run,
        node,
        auth,
        role,
        flags.includes('slave') ? 'replica' : 'primary',
        ', a cluster node',
      );
    }),
  );
}

/** Every server of the topology the config names, found the way the store finds them (backendSpecs). */
export async function checkRedis(run: Run, config: RedisTopologyConfig, role: Role): Promise<void> {
  const auth = redisIdentity(config, 'data');
  const ring = config.REDIS_MODE === 'ring';
  await Promise.all(
    backendSpecs(config).map(async (spec, i) => {
      // KV data lives on the first shard; every shard keeps its swarms' download counts.
      const label = ring
        ? `, ring shard ${spec.name}${i === 0 && durable(role) ? ' (KV data lives here)' : ''}`
        : '';
      switch (spec.mode) {
        case 'standalone':
          return checkRedisNode(run, spec.address, auth, role, 'primary', label);
        case 'sentinel':
          return checkSentinelSet(run, config, spec.masterName, spec.sentinels, role, label);
        case 'cluster':
          return checkCluster(run, config, spec.seeds, role);
      }
    }),
  );
}
