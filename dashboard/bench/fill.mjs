// Records RUNS runs through a runtime-gateway's `/invoke/echo` (the demo skill), CONNS at a time,
// all by the gateway's `local-user`: a listing of exactly RUNS runs by one caller in the ledger.
// Environment: BENCH_GATEWAY (its HTTP base), BENCH_CALLER (local-user's token), RUNS, CONNS.
const base = process.env.BENCH_GATEWAY;
const token = process.env.BENCH_CALLER;
const runs = Number(process.env.RUNS ?? 10000);
const conns = Number(process.env.CONNS ?? 16);
let next = 0;
const t = performance.now();
await Promise.all(
  Array.from({ length: conns }, async () => {
    while (next < runs) {
      const i = next++;
      const r = await fetch(`${base}/invoke/echo`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ text: `benchmark run ${i}` }),
      });
      if (!r.ok) throw new Error(`invoke ${i}: ${r.status} ${await r.text()}`);
      await r.arrayBuffer();
    }
  }),
);
const secs = (performance.now() - t) / 1000;
console.log(JSON.stringify({ runs, seconds: Math.round(secs * 100) / 100, runs_per_s: Math.round(runs / secs) }));
