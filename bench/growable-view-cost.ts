// What reading peer records through a view of a growable SharedArrayBuffer
// costs, by kind of view: the shared-memory store reads through a
// length-tracking one (docs/storage.md "Shared-memory store"). One kind per
// process, so V8 optimises each alone. BENCHMARKS.md "Shared-memory store".
//
//   node bench/growable-view-cost.ts length-tracking|fixed|plain
const kind = process.argv[2] ?? 'length-tracking';
if (kind !== 'length-tracking' && kind !== 'fixed' && kind !== 'plain') {
  console.error('view: length-tracking, fixed or plain');
  process.exit(2);
}
const sab =
  kind === 'plain'
    ? new SharedArrayBuffer(1 << 20)
    : new SharedArrayBuffer(1 << 20, { maxByteLength: 1 << 30 });
// length-tracking: `new Uint8Array(sab)` follows the buffer as it grows.
const view = kind === 'fixed' ? new Uint8Array(sab, 0, sab.byteLength) : new Uint8Array(sab);
const out = Buffer.alloc(300);

/** Copies 50 compact peers (6 bytes each) from 32-byte records at `at`, as a store's sampling does. */
function copy(at: number): number {
  let w = 0;
  for (let i = 0; i < 50; i++) {
    const k = at + i * 32;
    for (let j = 0; j < 6; j++) out[w++] = view[k + j]!;
  }
  return w;
}

const N = 200_000;
for (let round = 0; round < 3; round++) {
  const t0 = process.cpuUsage();
  let sink = 0;
  for (let i = 0; i < N; i++) sink += copy((i * 64) & 0xfff00);
  const used = process.cpuUsage(t0);
  console.log(
    `${kind}: ${(((used.user + used.system) * 1000) / N).toFixed(0)} ns CPU per 50-peer copy (round ${round}, ${sink > 0 ? 'ok' : ''})`,
  );
}
