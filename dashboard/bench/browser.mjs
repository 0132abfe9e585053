// The dashboard's benchmarks in Debian's headless Chromium (BENCHMARKS.md, "The dashboard in the
// browser"), against a real ledger-server on loopback, each figure with its baseline from the same
// run. `benches/dashboard-bench.sh` prepares the inputs and runs this; it prints one JSON object.
//
// 1. Receipts verified per second in the page: the verifier's module (dashboard/src/verify,
//    bundled by esbuild as the page's build bundles it) added to the served /app page, then
//    page.evaluate verifying real receipts fetched from the server, round after round for
//    RECEIPT_SECONDS. Baseline: `ledger-verify receipt` on the same receipt files (one process per
//    receipt, so it includes process start; `ledger-verify --version` is timed too to show that).
// 2. The runs page: first paint, first contentful paint, the time until its search form is in
//    the document (interactive) and until the table shows the first page of every run (50 rows
//    with their summaries, the server-side search `all=true`), from navigation start; then the
//    search by caller `local-user` (BENCH_RUNS runs) submitted, and the time from submit until the
//    table shows its first page (50 rows and the total). Median of LOADS fresh loads. Baseline:
//    the same HTTP requests the page makes (config, session, one /v1/runs page of 50 with
//    summaries) from Node, with no browser.
// 3. Pack files verified through the page's own pack form (the file input, which calls the same
//    function as the drop area), with the progress bar moving: wall time until the verdict; the
//    renderer processes' resident memory, sampled from /proc every 100 ms; the JS heap (CDP
//    Performance.getMetrics, sampled when the busy main thread answers, so a lower bound), at the
//    verdict and after a forced collection. Baseline: `ledger-verify pack` on the same file,
//    measured by the shell script.
//
// Environment: BENCH_HTTP (the server's HTTP base), BENCH_AUDITOR (auditor token), BENCH_WORK
// (receipts/*.json, log.json, and the packs listed in BENCH_PACKS as "file:descriptor" pairs,
// comma-separated), A2A_LEDGER_BIN_DIR, A2A_LEDGER_CHROMIUM.

import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
// esbuild is installed with tsx (a devDependency); it bundles the verifier as Vite does the page.
import { build } from 'esbuild';
import { chromium } from 'playwright-core';

const here = new URL('.', import.meta.url).pathname;
const env = (k, d) => process.env[k] ?? d ?? (() => { throw new Error(`${k} is not set`); })();
const base = env('BENCH_HTTP');
const auditor = env('BENCH_AUDITOR');
const work = env('BENCH_WORK');
const bins = env('A2A_LEDGER_BIN_DIR');
const browserPath = env('A2A_LEDGER_CHROMIUM', '/usr/bin/chromium');
const receiptSeconds = Number(env('RECEIPT_SECONDS', '5'));
const loads = Number(env('LOADS', '5'));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const round = (x, d = 1) => Math.round(x * 10 ** d) / 10 ** d;
const log = (s) => process.stderr.write(`${s}\n`);

const result = {};

/** Resident memory (MiB) of this browser's renderer processes, read from /proc: found as the
 * processes with `--type=renderer` below the browser process started on `profileDir`. */
function rendererRssMiB(profileDir) {
  const procs = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8');
      const rss = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${d}/status`, 'utf8'))?.[1] ?? 0);
      procs.push({ pid: Number(d), ppid, cmd, rss, exe: readlinkSync(`/proc/${d}/exe`) });
    } catch {
      // The process ended while being read.
    }
  }
  const mine = new Set(procs.filter((p) => p.cmd.includes(`--user-data-dir=${profileDir}`) && !p.cmd.includes('--type=')).map((p) => p.pid));
  for (let grew = true; grew; ) {
    grew = false;
    for (const p of procs) if (!mine.has(p.pid) && mine.has(p.ppid)) (mine.add(p.pid), (grew = true));
  }
  return procs.filter((p) => mine.has(p.pid) && p.cmd.includes('--type=renderer')).reduce((a, p) => a + p.rss, 0) / 1024;
}

// ---- the verifier's bundle, and the receipts ----
const bundle = await build({
  entryPoints: [join(here, '../src/verify/index.ts')],
  bundle: true,
  format: 'iife',
  globalName: 'LedgerVerify',
  target: 'es2022',
  minify: true,
  write: false,
});
const verifierSource = bundle.outputFiles[0].text;
const receiptDir = join(work, 'receipts');
const receiptFiles = readdirSync(receiptDir).filter((f) => f.endsWith('.json')).sort();
const receipts = receiptFiles.map((f) => readFileSync(join(receiptDir, f), 'utf8'));
const descriptor = readFileSync(join(work, 'log.json'), 'utf8');

const profileDir = join(work, 'profile');
const context = await chromium.launchPersistentContext(profileDir, {
  executablePath: browserPath,
  headless: true,
  // The verifier's bundle is added to the served page by this driver; the page's own CSP would refuse it.
  bypassCSP: true,
  args: [
    '--no-sandbox',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-default-apps',
    '--disable-sync',
    '--no-first-run',
    '--enable-precise-memory-info',
    '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
  ],
});
// Records when the runs page's search form is first in the document, when it is submitted, and
// when the runs table first holds its summary line (the rows and their links are there).
// The page lists every run as it opens (`__runsShown`); a submitted search replaces the table
// with "Loading…" before its answer, so the next summary line is the search's (`__searchShown`).
await context.addInitScript(() => {
  document.addEventListener('submit', () => (globalThis.__submitAt ??= performance.now()), true);
  const seen = () => {
    if (globalThis.__formShown === undefined && document.querySelector('form[role=search]')) globalThis.__formShown = performance.now();
    const t = document.getElementById('runs-table');
    if (t && / runs on this page/.test(t.textContent ?? '')) {
      if (globalThis.__runsShown === undefined) globalThis.__runsShown = performance.now();
      else if (globalThis.__submitAt !== undefined && globalThis.__searchShown === undefined) globalThis.__searchShown = performance.now();
    }
  };
  new MutationObserver(seen).observe(document, { childList: true, subtree: true, characterData: true });
});
const page = context.pages()[0] ?? (await context.newPage());
const errors = [];
page.on('pageerror', (e) => errors.push(String(e)));

await page.goto(`${base}/app`);
await page.getByLabel('Token').fill(auditor);
await page.getByRole('button', { name: 'Log in' }).click();
await page.getByRole('button', { name: 'Log out' }).waitFor();

// ---- 1. receipts per second in the page ----
{
  log(`== receipts: ${receipts.length} real receipts, ${receiptSeconds} s in Chromium`);
  await page.addScriptTag({ content: verifierSource });
  const r = await page.evaluate(
    async ({ receipts, descriptor, seconds }) => {
      const V = globalThis.LedgerVerify;
      const log = V.parseDescriptor(descriptor);
      // One pass first: every receipt must verify (and the checkpoint signature is remembered,
      // as the dashboard remembers it after its first receipt).
      for (const r of receipts) {
        const v = await V.verifyReceipt(r, log);
        if (!v.ok) return { error: v.message };
      }
      const t0 = performance.now();
      let n = 0;
      while (performance.now() - t0 < seconds * 1000) {
        for (const r of receipts) {
          const v = await V.verifyReceipt(r, log);
          if (!v.ok) return { error: v.message };
          n++;
        }
      }
      const ms = performance.now() - t0;
      return { receipts: n, seconds: ms / 1000, per_s: (n / ms) * 1000 };
    },
    { receipts, descriptor, seconds: receiptSeconds },
  );
  if (r.error) throw new Error(`a receipt did not verify in the page: ${r.error}`);
  const entries = receipts.map((x) => JSON.parse(x).entries?.length ?? 0);
  // Baseline: ledger-verify on the same files, one process per receipt.
  const cli = (args) => {
    const t = process.hrtime.bigint();
    execFileSync(join(bins, 'ledger-verify'), args, { stdio: 'ignore' });
    return Number(process.hrtime.bigint() - t) / 1e6;
  };
  const sample = receiptFiles.slice(0, 100);
  const cliMs = sample.map((f) => cli(['receipt', join(receiptDir, f), '--log', join(work, 'log.json')]));
  const startMs = sample.map(() => cli(['--version']));
  result.receipts = {
    receipts_distinct: receipts.length,
    entries_per_receipt_mean: round(entries.reduce((a, b) => a + b, 0) / entries.length),
    chromium: { verified: r.receipts, seconds: round(r.seconds, 2), receipts_per_s: Math.round(r.per_s) },
    ledger_verify_cli: {
      receipts: sample.length,
      median_ms_per_process: round(median(cliMs), 2),
      receipts_per_s: Math.round(1000 / median(cliMs)),
      process_start_median_ms: round(median(startMs), 2),
    },
  };
}

// ---- 2. the runs page ----
{
  log(`== runs page: ${loads} fresh loads`);
  const loadsOut = [];
  for (let i = 0; i < loads; i++) {
    await page.goto('about:blank');
    await page.goto(`${base}/app#/runs`);
    await page.waitForFunction(() => globalThis.__runsShown !== undefined, null, { timeout: 60000 });
    const listed = await page.evaluate(() => ({
      all_rows: document.querySelectorAll('#runs-table tbody tr').length,
      all_summary: document.querySelector('#runs-table p')?.textContent ?? '',
    }));
    await page.getByLabel('Caller').fill('local-user');
    await page.getByLabel('Caller').press('Enter');
    await page.waitForFunction(() => globalThis.__searchShown !== undefined, null, { timeout: 60000 });
    loadsOut.push({
      ...listed,
      ...(await page.evaluate(() => {
        const paint = Object.fromEntries(performance.getEntriesByType('paint').map((p) => [p.name, p.startTime]));
        const nav = performance.getEntriesByType('navigation')[0];
        const rows = document.querySelectorAll('#runs-table tbody tr').length;
        const summary = document.querySelector('#runs-table p')?.textContent ?? '';
        return {
          first_paint_ms: paint['first-paint'],
          first_contentful_paint_ms: paint['first-contentful-paint'],
          dom_content_loaded_ms: nav.domContentLoadedEventEnd,
          search_form_shown_ms: globalThis.__formShown,
          all_runs_table_shown_ms: globalThis.__runsShown,
          submit_to_table_ms: globalThis.__searchShown - globalThis.__submitAt,
          rows,
          summary,
        };
      })),
    });
  }
  // Baseline: the page's requests from Node (cookie session as the page has it).
  const session = (await context.cookies()).find((c) => c.name === 'a2a_session');
  const headers = { cookie: `a2a_session=${session.value}` };
  const get = async (path) => {
    const r = await fetch(`${base}${path}`, { headers });
    if (!r.ok) throw new Error(`GET ${path}: ${r.status}`);
    return r.json();
  };
  const nodeMs = [];
  for (let i = 0; i < loads; i++) {
    const t = performance.now();
    await get('/app/config.json');
    await get('/auth/session');
    await get('/v1/runs?all=true&limit=50&summary=true');
    nodeMs.push(performance.now() - t);
  }
  const pick = (k) => round(median(loadsOut.map((x) => x[k])));
  result.runs_page = {
    all_runs_summary: loadsOut[0].all_summary,
    all_runs_rows_shown: loadsOut[0].all_rows,
    summary: loadsOut[0].summary,
    rows_shown: loadsOut[0].rows,
    loads,
    median: {
      first_paint_ms: pick('first_paint_ms'),
      first_contentful_paint_ms: pick('first_contentful_paint_ms'),
      dom_content_loaded_ms: pick('dom_content_loaded_ms'),
      search_form_shown_ms: pick('search_form_shown_ms'),
      all_runs_table_shown_ms: pick('all_runs_table_shown_ms'),
      submit_to_table_ms: pick('submit_to_table_ms'),
    },
    each_submit_to_table_ms: loadsOut.map((x) => round(x.submit_to_table_ms)),
    baseline_same_requests_from_node_median_ms: round(median(nodeMs)),
  };
}

// ---- 3. packs through the page's pack form ----
{
  const cdp = await context.newCDPSession(page);
  await cdp.send('Performance.enable');
  const heap = async () => {
    const m = (await cdp.send('Performance.getMetrics')).metrics;
    return m.find((x) => x.name === 'JSHeapUsedSize').value;
  };
  const packs = env('BENCH_PACKS').split(',').filter(Boolean);
  result.packs = [];
  await page.goto(`${base}/app#/pins`);
  for (const p of packs) {
    const desc = readFileSync(p.split(':')[1], 'utf8');
    await page.getByLabel('Log descriptor (JSON: origin, hash, vkey)').fill(desc);
    await page.getByRole('button', { name: 'Pin this log' }).click();
    await page.getByRole('button', { name: `Drop the descriptor of ${JSON.parse(desc).origin}` }).waitFor();
  }
  for (const p of packs) {
    const [file, descFile] = p.split(':');
    const origin = JSON.parse(readFileSync(descFile, 'utf8')).origin;
    log(`== pack ${file} in Chromium`);
    await page.goto('about:blank');
    await page.goto(`${base}/app#/packs`);
    await page.getByLabel('Log the pack is of (pinned)').selectOption(origin);
    await cdp.send('HeapProfiler.collectGarbage').catch(() => undefined);
    const before = await heap();
    let peak = before;
    let progressSeen = 0;
    let sampling = true;
    // Sampled from Node on a timer: the renderer's main thread need not answer for this one.
    const rssBefore = rendererRssMiB(profileDir);
    let rssPeak = rssBefore;
    const rssTimer = setInterval(() => (rssPeak = Math.max(rssPeak, rendererRssMiB(profileDir))), 100);
    const sampler = (async () => {
      while (sampling) {
        peak = Math.max(peak, await heap());
    clearInterval(rssTimer);
    rssPeak = Math.max(rssPeak, rendererRssMiB(profileDir));        const v = await page.evaluate(() => Number(document.getElementById('pack-progress')?.value ?? 0));
        if (v > 0) progressSeen++; // a sample taken while the progress bar had moved
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const t = performance.now();
    await page.locator('#pack-file').setInputFiles(file);
    await page.locator('#pack-ok, #pack-verdict .problem, #pack-verdict [role=alert]').first().waitFor({ timeout: 30 * 60 * 1000 });
    const secs = (performance.now() - t) / 1000;
    sampling = false;
    await sampler;
    peak = Math.max(peak, await heap());
    clearInterval(rssTimer);
    rssPeak = Math.max(rssPeak, rendererRssMiB(profileDir));    const verdict = await page.locator('#pack-verdict').textContent();
    if (!verdict.startsWith('Pack verified')) throw new Error(`the pack did not verify in the page: ${verdict}`);
    const entries = Number(/, (\d+) entries,/.exec(verdict)[1]);
    const memory = await page.evaluate(() => performance.memory?.usedJSHeapSize ?? null);
    // What of the heap the verification left is still reachable.
    await cdp.send('HeapProfiler.collectGarbage');
    const live = await heap();
    result.packs.push({
      file,
      verdict: verdict.split('.')[0],
      entries,
      chromium: {
        seconds: round(secs, 2),
        entries_per_s: Math.round(entries / secs),
        js_heap_before_mib: round(before / 2 ** 20),
        js_heap_peak_mib: round(peak / 2 ** 20),
        js_heap_at_verdict_mib: memory === null ? null : round(memory / 2 ** 20),
        js_heap_after_gc_mib: round(live / 2 ** 20),
        js_heap_samples: progressSeen,
        renderer_rss_before_mib: round(rssBefore),
        renderer_rss_peak_mib: round(rssPeak),
      },
    });
  }
}

result.page_errors = errors;
await context.close();
console.log(JSON.stringify(result, null, 2));
