// Placement of swarms on ring shards by rendezvous (highest random weight)
// hashing: each swarm goes to the shard whose hash of (shard name, infohash)
// is highest. Adding a shard moves only the swarms the new shard wins;
// removing one moves only that shard's swarms; every other swarm keeps its
// shard (docs/redis.md, docs/configuration.md "Reloading").
// Shards are identified by name, so an address change under the same name
// moves nothing. The function is fixed: changing it moves every swarm.
import { hash } from 'node:crypto';

/** 48-bit weight of `shard` for `infoHash`: the first 6 bytes of md5(name, 0x00, infoHash). */
export function shardWeight(shard: string, infoHash: Buffer): number {
  const digest = hash(
    'md5',
    Buffer.concat([Buffer.from(shard, 'utf8'), Buffer.of(0), infoHash]),
    'buffer',
  );
  return digest.readUIntBE(0, 6);
}

/** Index into `names` of the shard owning `infoHash` (ties, practically impossible, go to the lower name). */
export function ownerIndex(names: readonly string[], infoHash: Buffer): number {
  let best = -1;
  let bestWeight = -1;
  for (let i = 0; i < names.length; i++) {
    const name = names[i]!;
    const w = shardWeight(name, infoHash);
    if (w > bestWeight || (w === bestWeight && name < names[best]!)) {
      best = i;
      bestWeight = w;
    }
  }
  return best;
}
