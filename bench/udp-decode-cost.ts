// What decoding one BEP 15 announce costs, in ns, for this tree's protocol
// package and any other checkouts given (git worktrees of earlier commits),
// interleaved round by round so machine noise hits each alike. The gateway's
// CPU per announce (bench/scale.sh) is mostly the kernel's send and Node's
// socket callback; this isolates the part Shoal's own code decides.
//   node bench/udp-decode-cost.ts [OTHER_TREE...]
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

interface Decoder {
  decodeUdpRequest(this: void, buf: Buffer): { action: string; request?: { key?: string } };
}

const here = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const trees = [here, ...process.argv.slice(2).map((t) => resolve(t))];
const decoders = await Promise.all(
  trees.map(
    async (t) =>
      (await import(pathToFileURL(join(t, 'packages/protocol/src/udp.ts')).href)) as Decoder,
  ),
);
const packet = Buffer.alloc(98);
packet.writeUInt32BE(1, 8);
packet.writeUInt32BE(1234, 12);
for (let i = 16; i < 56; i++) packet[i] = (i * 7) & 0xff;
packet.writeBigUInt64BE(1000n, 64);
packet.writeUInt32BE(0xdeadbeef, 88);
packet.writeInt32BE(50, 92);
packet.writeUInt16BE(6881, 96);

const perRound = 500_000;
const rounds = 9;
const ns: number[][] = trees.map(() => []);
let sink = 0;
for (let round = 0; round < rounds; round++) {
  for (let k = 0; k < decoders.length; k++) {
    const decode = decoders[k]!.decodeUdpRequest;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < perRound; i++) {
      packet[91] = i & 0xff;
      sink += decode(packet).request?.key?.length ?? 0;
    }
    ns[k]!.push(Number(process.hrtime.bigint() - t0) / perRound);
  }
}
for (let k = 0; k < trees.length; k++) {
  const s = ns[k]!.sort((a, b) => a - b);
  const q = (p: number): string => s[Math.floor(p * (s.length - 1))]!.toFixed(0);
  console.log(`${trees[k]}: ${q(0.5)} ns per announce decode (quartiles ${q(0.25)}..${q(0.75)})`);
}
if (sink === -1) console.log(sink);
