// What the policy chain's synchronous steps cost per announce, in isolation:
// the same steps the gateway runs (services/announce-gateway/src/tracker/steps.ts)
// with the lists of bench/policy-chain.sh (10,000 allowed hashes, 50 denied
// client prefixes), per-IP rate limit, interval jitter. The end-to-end ratio
// on this 2-core machine moves +-20% between rounds; this number does not.
//   node bench/policy-chain-cost.ts [ANNOUNCES]
import { randomBytes } from 'node:crypto';
import { compilePolicy, createRateLimiter } from '@shoal/policy';

const n = Number(process.argv[2] ?? 2_000_000);
const hashes = Array.from({ length: 10_000 }, () => randomBytes(20));
const policy = compilePolicy({
  revision: 'bench',
  torrents: { allow: hashes.map((h) => h.toString('hex')), deny: [] },
  clients: {
    allow: [],
    deny: Array.from({ length: 50 }, (_, i) => `-Z${String(i).padStart(2, '0')}`),
  },
  passkeys: [['benchpasskey0123456789abcdef0123', null]],
});
const limiter = createRateLimiter({ ratePerSecond: 1e6, burst: 1e6, maxAddresses: 100_000 });
// Announces as UDP hands them over: slices of one packet buffer.
const packets = Array.from({ length: 4096 }, (_, i) => {
  const p = Buffer.alloc(98);
  hashes[i % hashes.length]!.copy(p, 16);
  randomBytes(20).copy(p, 36);
  Buffer.from('-WK0001-').copy(p, 36);
  return p;
});
const addresses = Array.from({ length: 256 }, (_, i) => Buffer.from([10, 0, 0, i]));

function run(withChain: boolean): number {
  let sink = 0;
  const start = process.hrtime.bigint();
  const now = Date.now();
  for (let i = 0; i < n; i++) {
    const p = packets[i & 4095]!;
    const infoHash = p.subarray(16, 36);
    const peerId = p.subarray(36, 56);
    if (withChain) {
      if (!limiter.take(4, addresses[i & 255]!, now)) sink--;
      policy.checkPasskey('benchpasskey0123456789abcdef0123', now);
      policy.checkClient(peerId, 'deny');
      policy.checkTorrent(infoHash, 'allow');
      sink += 1800 + Math.floor(Math.random() * 301);
    } else {
      sink += 1800;
    }
  }
  const ns = Number(process.hrtime.bigint() - start) / n;
  if (sink === 42) console.log('');
  return ns;
}

// Warm up both paths.
for (let round = 0; round < 2; round++) {
  run(true);
  run(false);
}
const on: number[] = [];
const off: number[] = [];
for (let round = 0; round < 5; round++) {
  on.push(run(true));
  off.push(run(false));
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(
  `chain steps: ${(median(on) - median(off)).toFixed(0)} ns per announce (median of 5 x ${n}; loop alone ${median(off).toFixed(0)} ns)`,
);
