/**
 * Rates of the in-browser verifier on this machine's Node (run: `npm run bench`): entries decoded,
 * receipts verified (the golden receipt, its checkpoint signature remembered as the dashboard
 * remembers it), strict signatures under a known key, and a pack of interleaved sealed runs.
 * A figure for BENCHMARKS.md is the median of three runs, stated with ledger-core's in the same run.
 */
import { decodeEntry, fromHex, parseDescriptor, verifyPack, verifyReceipt } from '../src/verify/index.ts';
import { streamOf, tar, text } from './helpers.ts';
import { log, makeLog, pack } from './synthetic.ts';

async function rate(name: string, unit: string, each: () => Promise<number> | number): Promise<void> {
  const start = performance.now();
  let n = 0;
  while (performance.now() - start < 3000) n += await each();
  console.log(`${name}: ${Math.round((n / (performance.now() - start)) * 1000)} ${unit}/s`);
}

const entries = text('testdata/golden/entries.txt')
  .trim()
  .split('\n')
  .map((l) => fromHex(l.split(' ')[1]!));
await rate('entries decoded (golden, every kind)', 'entries', () => {
  for (const e of entries) decodeEntry(e);
  return entries.length;
});

const golden = parseDescriptor(text('testdata/golden/log-blake3.json'));
const receipt = text('testdata/golden/receipt-blake3.json');
await rate('receipts verified (golden blake3, 6 entries)', 'receipts', async () => {
  const v = await verifyReceipt(receipt, golden);
  if (!v.ok) throw new Error(v.message);
  return 1;
});

const runs = Number(process.env.RUNS ?? 2000);
const made = makeLog(runs);
const archive = tar(pack(made.entries, 0));
const t = performance.now();
const v = await verifyPack(streamOf(archive, 1 << 20), log);
const secs = (performance.now() - t) / 1000;
if (!v.ok) throw new Error(v.message ?? v.malformed);
console.log(
  `pack of ${made.entries.length} entries (${runs} runs, ${made.seals} seals): ${secs.toFixed(2)} s, ` +
    `${Math.round(made.entries.length / secs)} entries/s, ${Math.round(made.seals / secs)} seals/s`,
);
