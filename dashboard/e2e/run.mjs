// End to end: the real ledger-server and runtime-gateway on loopback, the dashboard in Debian's
// headless Chromium driven by playwright-core, every page checked with axe-core.
//
// The story: the gateway (remote mode) runs the demo's echo skill three times, then (a second
// later) its fail and report skills, into ledger A; A is
// stopped and its data directory copied to B (the same log key); then each erases a different
// payload, so A and B are two signed versions of one log that fork. In the browser, on A's /app:
// log in with the keyboard, pin A's descriptor, see every run listed, search them on the server
// by skill, status and accepted time, open one and see all five SPEC §5
// steps verified, load a tampered receipt and see step 2 fail naming the index, see the erased
// input as "erased on … by … because …", see the log consistent, then see B's checkpoint raise the
// fork alarm (pasted, and as the checkpoint this browser last saw), verify a pack file, log out;
// then open a gateway with its ledger embedded and see its log page verify and prove consistency;
// then a gateway with two logs on a NATS JetStream bus (issue 20's sharding: one nats-server, logs
// main and billing with their own keys and origins, one ledger-server each, the agent `billing`
// routed to billing): pin both logs' descriptors from their files, see an echo run (main) and a
// report run (billing) listed and each receipt verified under its own log's descriptor, drop
// billing's and see that run's page name its log as not pinned while the main run still verifies.
//
// Environment: A2A_LEDGER_BIN_DIR (the release binaries), A2A_LEDGER_CHROMIUM (the browser,
// default /usr/bin/chromium), A2A_LEDGER_E2E_OUT (screenshots; default under the target dir),
// A2A_LEDGER_NATS_SERVER (the pinned nats-server that scripts/lib.sh's ensure_nats_server checks).
// Exit 0 when every check passed; otherwise the first failure, and the processes are stopped.

import { execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const here = new URL('.', import.meta.url).pathname;
const target = process.env.CARGO_TARGET_DIR ?? join(process.env.HOME, '.cache/a2a-ledger-target');
const bins = process.env.A2A_LEDGER_BIN_DIR ?? join(target, 'release');
const browserPath = process.env.A2A_LEDGER_CHROMIUM ?? '/usr/bin/chromium';
const out = process.env.A2A_LEDGER_E2E_OUT ?? join(target, 'dashboard-e2e');
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const work = mkdtempSync(join(tmpdir(), 'a2a-dashboard-e2e-'));
const procs = new Set();
/** The page, for a screenshot and its text when a check fails. */
let current;
/** The browser, closed at the end whatever happened (its profile is under `work`). */
let browser;

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
  console.log(`ok  ${what}`);
}

/**
 * Starts a binary (a name in the release directory, or a path); resolves with the lines it
 * printed on `from` (stdout, or stderr for nats-server's log) up to (and including) one matching
 * `ready`.
 */
function start(name, args, ready, from = 'stdout') {
  const child = spawn(name.includes('/') ? name : join(bins, name), args, { stdio: ['ignore', 'pipe', 'pipe'] });
  procs.add(child);
  let err = '';
  if (from === 'stdout') child.stderr.on('data', (d) => (err += d));
  else child.stdout.resume();
  const lines = [];
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: child[from] });
    rl.on('line', (line) => {
      lines.push(line);
      if (ready.test(line)) resolve({ child, lines });
    });
    child.on('exit', (code) => reject(new Error(`${name} exited with ${code} before it was ready: ${err || lines.join('\n')}`)));
  });
}

/** Runs a binary of the release directory to its end; resolves with its stdout. */
function run(name, args) {
  return new Promise((resolve, reject) => {
    execFile(join(bins, name), args, (e, stdout, stderr) => (e ? reject(new Error(`${name} ${args.join(' ')}: ${e.message} ${stderr}`)) : resolve(stdout)));
  });
}

function addr(lines, prefix) {
  const l = lines.find((x) => x.startsWith(prefix));
  return l.slice(prefix.length).trim().replace(/^http:\/\//, '');
}

async function stop(child) {
  // Already gone (an exit code, or killed by a signal): no 'exit' event is coming.
  if (child.exitCode !== null || child.signalCode !== null) {
    procs.delete(child);
    return;
  }
  const done = new Promise((r) => child.on('exit', r));
  child.kill('SIGTERM');
  await done;
  procs.delete(child);
}

const sha256hex = (s) => createHash('sha256').update(s).digest('hex');
const token = (name) => `${name}-${randomBytes(16).toString('hex')}`;

async function http(method, url, { bearer, body, headers = {} } = {}) {
  const h = { ...headers };
  if (bearer) h.authorization = `Bearer ${bearer}`;
  if (body !== undefined) h['content-type'] = 'application/json';
  const r = await fetch(url, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
  if (!r.ok) throw new Error(`${method} ${url}: ${r.status} ${await r.text()}`);
  return r;
}

function findKey(v, key) {
  if (v && typeof v === 'object') {
    if (key in v) return v[key];
    for (const x of Object.values(v)) {
      const f = findKey(x, key);
      if (f !== undefined) return f;
    }
  }
  return undefined;
}

async function main() {
  // ---- the ledger and the runs ----
  const tokens = { ingest: token('ingest'), auditor: token('auditor'), admin: token('admin') };
  const config = `checkpoint_interval_ms = 50
[[principal]]
name = "gateway"
role = "ingest"
token_sha256 = "${sha256hex(tokens.ingest)}"
identities = ["gateway"]
[[principal]]
name = "auditor"
role = "auditor"
token_sha256 = "${sha256hex(tokens.auditor)}"
[[principal]]
name = "compliance-officer"
role = "admin"
token_sha256 = "${sha256hex(tokens.admin)}"
`;
  writeFileSync(join(work, 'server.toml'), config);
  const ledgerArgs = (dir) => ['--data', join(work, dir), '--config', join(work, 'server.toml'), '--http', '127.0.0.1:0', '--grpc', '127.0.0.1:0'];
  let a = await start('ledger-server', ledgerArgs('a'), /^listening grpc /);
  let aHttp = `http://${addr(a.lines, 'listening http ')}`;
  const aGrpc = `http://${addr(a.lines, 'listening grpc ')}`;
  const gwDir = join(work, 'gw');
  const gw = await start('runtime-gateway', ['--ledger', aGrpc, '--ledger-token', tokens.ingest, '--data', gwDir, '--listen', '127.0.0.1:0'], /^try:/);
  const gwUrl = `http://${addr(gw.lines, 'listening http ')}`;
  const caller = JSON.parse(readFileSync(join(gwDir, 'gateway-tokens.json'), 'utf8'))['local-user'].token;
  const runs = [];
  for (const text of ['first', 'second', 'third']) {
    const r = await (await http('POST', `${gwUrl}/invoke/echo`, { bearer: caller, body: { text: `hello ${text}` } })).json();
    runs.push(r.run);
  }
  // Two more for the search, over a second later (the time search has a second's precision):
  // one of the demo's `fail` skill, one `report`.
  await new Promise((r) => setTimeout(r, 1100));
  const later = [];
  for (const [skill, input] of [['fail', {}], ['report', { title: 'Q3' }]]) {
    const r = await fetch(`${gwUrl}/invoke/${skill}`, { method: 'POST', headers: { authorization: `Bearer ${caller}`, 'content-type': 'application/json' }, body: JSON.stringify(input) });
    later.push((await r.json()).run);
  }
  for (const run of [...runs, ...later]) await http('GET', `${aHttp}/runs/${run}/receipt?wait=10`, { bearer: tokens.auditor });
  check(runs.length === 3 && later.length === 2, 'five runs recorded through the gateway and sealed');
  const [failedRun, report] = later;
  await stop(gw.child);
  const inputOf = async (run) => findKey((await (await http('GET', `${aHttp}/runs/${run}`, { bearer: tokens.auditor })).json()).entries[0].decoded, 'input_hash');

  // ---- the fork: B is a copy of A's directory, then each erases another payload ----
  const [in0, in1] = [await inputOf(runs[0]), await inputOf(runs[1])];
  await stop(a.child);
  cpSync(join(work, 'a'), join(work, 'b'), { recursive: true });
  a = await start('ledger-server', ledgerArgs('a'), /^listening grpc /);
  aHttp = `http://${addr(a.lines, 'listening http ')}`;
  const b = await start('ledger-server', ledgerArgs('b'), /^listening grpc /);
  const bHttp = `http://${addr(b.lines, 'listening http ')}`;
  await http('POST', `${aHttp}/v1/payloads/${in0}/erase`, { bearer: tokens.admin, body: { reason: 'GDPR art. 17 request 42' } });
  await http('POST', `${bHttp}/v1/payloads/${in1}/erase`, { bearer: tokens.admin, body: { reason: 'a different history' } });
  const settled = async (base) => {
    for (;;) {
      const h = await (await fetch(`${base}/healthz`)).json();
      if (h.checkpoint_size === h.tree_size) return (await http('GET', `${base}/v1/checkpoint`)).text();
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const [noteA, noteB] = [await settled(aHttp), await settled(bHttp)];
  check(noteA.split('\n')[0] === noteB.split('\n')[0] && noteA !== noteB, 'A and B: one log key, two different signed checkpoints');
  const descriptor = await (await http('GET', `${aHttp}/v1/log`)).text();
  const receipt = await (await http('GET', `${aHttp}/runs/${runs[2]}/receipt`, { bearer: tokens.auditor })).text();
  const pack = Buffer.from(await (await http('GET', `${aHttp}/v1/pack?payloads=true`, { bearer: tokens.auditor })).arrayBuffer());

  // ---- the browser ----
  const axeSource = readFileSync(join(here, '../node_modules/axe-core/axe.min.js'), 'utf8');
  const launch = (profile, bypassCSP) =>
    chromium.launchPersistentContext(join(work, profile), {
      executablePath: browserPath,
      headless: true,
      bypassCSP,
      args: [
        '--no-sandbox',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-default-apps',
        '--disable-sync',
        '--no-first-run',
        '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
      ],
    });

  // Under the page's own Content-Security-Policy: its script runs, nothing is refused.
  {
    const strict = await launch('profile-csp', false);
    const p = strict.pages()[0] ?? (await strict.newPage());
    const refused = [];
    p.on('console', (m) => m.text().includes('Content Security Policy') && refused.push(m.text()));
    const r = await p.goto(`${aHttp}/app`);
    check(r.headers()['content-security-policy']?.startsWith("default-src 'none'"), '/app is served with its Content-Security-Policy');
    await p.getByLabel('Token').fill(tokens.auditor);
    await p.getByRole('button', { name: 'Log in' }).click();
    await p.getByRole('button', { name: 'Log out' }).waitFor();
    check(refused.length === 0, `under its own CSP the page runs and logs in, nothing refused${refused.length ? `: ${refused.join(' | ')}` : ''}`);
    await strict.close();
  }

  // axe-core is added to the pages by the test; the page's own CSP would refuse it.
  const context = await launch('profile', true);
  browser = context;
  const page = context.pages()[0] ?? (await context.newPage());
  current = page;
  const offsite = [];
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (u.protocol !== 'file:' && u.hostname !== '127.0.0.1' && !u.protocol.startsWith('data') && !u.protocol.startsWith('blob')) offsite.push(r.url());
  });
  const consoleErrors = [];
  page.on('pageerror', (e) => consoleErrors.push(String(e)));

  const shot = async (name) => page.screenshot({ path: join(out, `${name}.png`), fullPage: true });
  const axe = async (name) => {
    await page.addScriptTag({ content: axeSource });
    const r = await page.evaluate(async () => await globalThis.axe.run(document, { resultTypes: ['violations'] }));
    const v = r.violations.map((x) => `${x.id} (${x.impact}): ${x.nodes.map((n) => n.target.join(' ')).join('; ')}`);
    check(v.length === 0, `axe-core finds no accessibility violation on ${name}${v.length ? `: ${v.join(' | ')}` : ''}`);
  };

  // Log in with the keyboard only: the token field has the focus, Enter submits.
  await page.goto(`${aHttp}/app`);
  await page.getByLabel('Token').waitFor();
  await axe('the login page');
  check(await page.evaluate(() => document.activeElement?.getAttribute('name')) === 'token', 'the token field has the focus');
  await page.keyboard.type(tokens.auditor);
  await page.keyboard.press('Enter');
  await page.getByRole('button', { name: 'Log out' }).waitFor();
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === 'a2a_session');
  check(session && session.httpOnly && session.sameSite === 'Strict', 'logged in: an HttpOnly, SameSite=Strict session cookie');
  check(!(await page.evaluate(() => document.cookie)).includes('a2a_session'), 'the page cannot read the session cookie');
  await shot('01-logged-in');

  // Pin the log descriptor (as the auditor would, from the operator).
  await page.getByRole('link', { name: 'Pinned logs and policies' }).click();
  await page.getByLabel('Log descriptor (JSON: origin, hash, vkey)').fill(descriptor);
  await page.getByRole('button', { name: 'Pin this log' }).click();
  await page.getByRole('button', { name: /Drop the descriptor of/ }).waitFor();
  await axe('the pins page');
  await shot('02-pinned');

  // Runs: every run as the page opens, then searches on the server by skill, status and time,
  // each submitted from the keyboard (Enter in a field).
  const listed = async () => page.$$eval('#runs-table tbody tr td:first-child', (tds) => tds.map((t) => t.textContent));
  const shows = async (want, what) => {
    await page.waitForFunction((n) => document.querySelectorAll('#runs-table tbody tr').length === n && / runs on this page/.test(document.getElementById('runs-table')?.textContent ?? ''), want.length);
    const got = await listed();
    check(JSON.stringify(got) === JSON.stringify(want), `${what}: ${got.join(', ')}`);
  };
  await page.getByRole('link', { name: 'Runs' }).click();
  await shows([report, failedRun, ...[...runs].reverse()], 'every run is listed as the page opens, newest first');
  const cells = await page.$$eval('#runs-table tbody tr:nth-child(2) td', (tds) => tds.map((t) => t.textContent));
  check(cells[3] === 'fail' && cells[4] === 'failed' && cells[5] === 'gateway' && cells[2] === 'local-user', `each row has its summary (skill, status, agent, caller): ${cells.join(' | ')}`);
  await axe('the runs page');
  await shot('03-runs');
  await page.getByLabel('Skill').fill('echo');
  await page.getByLabel('Skill').press('Enter');
  await shows([...runs].reverse(), 'the search by skill echo finds the three echo runs');
  await page.getByLabel('Skill').fill('');
  await page.getByLabel('Status').selectOption('failed');
  await page.getByLabel('Caller').press('Enter');
  await shows([failedRun], 'the search by status failed finds the failed run');
  await page.getByLabel('Status').selectOption('');
  // The later runs' accepted time, to the second, as the datetime-local fields take it (local time).
  const failedTs = (await (await http('GET', `${aHttp}/v1/runs?status=failed&summary=true`, { bearer: tokens.auditor })).json()).runs[0].ts;
  const localSecond = await page.evaluate((ms) => {
    const d = new Date(ms);
    const p = (n) => String(n).padStart(2, '0');
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  }, Number(BigInt(failedTs) / 1_000_000n));
  await page.getByLabel('Accepted from (local time)').fill(localSecond);
  await page.getByLabel('Caller').press('Enter');
  await shows([report, failedRun], 'the search from the failed run\'s second on finds the two later runs');
  await page.getByLabel('Accepted from (local time)').fill('');
  await page.getByLabel('Accepted before (local time)').fill(localSecond);
  await page.getByLabel('Caller').press('Enter');
  await shows([...runs].reverse(), 'the search before that second finds the three earlier runs');
  await axe('the runs page with a search');
  await shot('03b-runs-searched');

  // One run: every step verified.
  await page.getByRole('link', { name: runs[2] }).click();
  await page.locator('#receipt-verdict').waitFor();
  const verdict = await page.locator('#receipt-verdict').textContent();
  check(verdict.startsWith('Receipt verified in this browser'), `the receipt of ${runs[2]} verifies in the browser`);
  const okSteps = await page.$$eval('.verdict tbody tr.step-ok', (rows) => rows.map((r) => r.getAttribute('data-step')));
  check(JSON.stringify(okSteps) === JSON.stringify(['1', '2', '3', '4', '5']), 'all five SPEC §5 steps are shown verified');
  await page.locator('#payloads li .badge.ok').first().waitFor();
  check((await page.locator('#entries tbody tr').count()) >= 4, 'every entry of the run is listed');
  await axe('the run page');
  await shot('04-run-verified');

  // A tampered receipt: one proof hash changed; step 2 fails naming the entry's index.
  const tampered = JSON.parse(receipt);
  const victim = tampered.entries[1];
  const proof = Buffer.from(victim.proof[0], 'base64');
  proof[0] ^= 1;
  victim.proof[0] = proof.toString('base64');
  await page.locator('#receipt-file').setInputFiles({ name: 'tampered.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(tampered)) });
  await page.locator('#file-verdict').waitFor();
  check((await page.locator('#file-verdict').textContent()).startsWith('Receipt INVALID'), 'the tampered receipt is invalid');
  const failed = await page.$$eval('#receipt-file-verdict tbody tr.step-bad', (rows) => rows.map((r) => r.textContent));
  check(failed.length === 1 && failed[0].includes('inclusion proofs') && failed[0].includes(`index ${victim.index}`), `the tampered receipt fails at step 2 (inclusion proofs) naming index ${victim.index}`);
  check((await page.locator('#receipt-file-verdict tbody tr.step-ok').count()) === 1, 'step 1 still verifies, the later steps are not reached');
  await shot('05-tampered-receipt');

  // An erased payload: the first run's input.
  await page.goto(`${aHttp}/app#/run/${runs[0]}`);
  const erased = page.locator(`#payloads li[data-payload="${in0}"]`);
  await erased.locator('.badge.warn').waitFor();
  const erasedText = await erased.textContent();
  check(/erased on \d{4}-\d\d-\d\dT.* by compliance-officer because GDPR art\. 17 request 42/.test(erasedText), 'the erased input shows when, by whom and why');
  await shot('06-erased-payload');

  // The log: verified, remembered, then consistent on the next visit.
  await page.getByRole('link', { name: 'The log' }).click();
  await page.locator('#tree-size').waitFor();
  check((await page.locator('#tree-size').textContent()) === noteA.split('\n')[1], 'the log page shows the verified tree size');
  await page.reload();
  await page.locator('#consistency-ok').waitFor();
  check(true, 'the newest checkpoint is consistent with the one this browser saw');
  await axe('the log page');
  await shot('07-log-consistent');

  // The fork, pasted: the alarm with both checkpoints.
  await page.getByLabel('Compare with a checkpoint you saw elsewhere (signed note)').fill(noteB);
  await page.getByRole('button', { name: 'Check consistency' }).click();
  await page.locator('#fork-alarm').waitFor();
  const alarm = await page.locator('#fork-alarm').textContent();
  check(alarm.includes('FORK') && alarm.includes(noteA.split('\n')[2]) && alarm.includes(noteB.split('\n')[2]), 'a forked checkpoint raises the alarm showing both checkpoints');
  await shot('08-fork-alarm');
  // The fork as the checkpoint this browser last saw (B's, as if it had been served B before).
  const origin = noteA.split('\n')[0];
  await page.evaluate(([o, n]) => localStorage.setItem(`a2a-ledger.seen.${o}`, JSON.stringify(n)), [origin, noteB]);
  await page.reload();
  await page.locator('#fork-alarm').waitFor();
  check((await page.evaluate((o) => JSON.parse(localStorage.getItem(`a2a-ledger.seen.${o}`)), origin)) === noteB, 'after a fork the remembered checkpoint is kept as evidence');
  await axe('the log page with the alarm');

  // Packs: a pack file verified in the page, streamed with progress.
  await page.getByRole('link', { name: 'Packs' }).click();
  await page.locator('#pack-file').setInputFiles({ name: 'pack.tar', mimeType: 'application/x-tar', buffer: pack });
  await page.locator('#pack-ok').waitFor();
  const packText = await page.locator('#pack-verdict').textContent();
  check(packText.includes('erased') && packText.includes('GDPR art. 17 request 42'), 'the pack verifies in the page and names the erasure');
  check(Number(await page.locator('#pack-progress').getAttribute('max')) === pack.length, 'progress followed the whole file');
  await axe('the packs page');
  await shot('09-pack-verified');

  // Keyboard: from the top, Tab reaches the page's links and controls in order, each with a name.
  await page.evaluate(() => document.activeElement?.blur());
  const reached = [];
  for (let i = 0; i < 12; i++) {
    await page.keyboard.press('Tab');
    reached.push(await page.evaluate(() => {
      const el = document.activeElement;
      const labelled = el?.labels?.[0]?.textContent ?? el?.getAttribute('aria-label') ?? el?.textContent;
      return `${el?.tagName}:${(labelled ?? '').trim().slice(0, 30)}`;
    }));
  }
  check(reached.every((r) => !r.endsWith(':')) && reached.some((r) => r.startsWith('A:Runs')) && reached.some((r) => r.startsWith('INPUT')), `Tab walks named controls: ${reached.join(', ')}`);

  // Log out: the cookie opens nothing any more.
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.getByLabel('Token').waitFor();
  const after = await page.evaluate(async () => (await fetch('/auth/session')).status);
  check(after === 401, 'after logging out the session is gone');
  await shot('10-logged-out');

  // Opened from disk: the same page calls the ledger across origins with the bearer token.
  await page.goto(`file://${join(here, '../dist/app.html')}`);
  await page.getByLabel('Ledger URL').fill(aHttp);
  await page.getByLabel('Token').fill(tokens.auditor);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('link', { name: 'Pinned logs and policies' }).click();
  await page.getByLabel('Log descriptor (JSON: origin, hash, vkey)').fill(descriptor);
  await page.getByRole('button', { name: 'Pin this log' }).click();
  await page.evaluate((id) => (location.hash = `#/run/${id}`), runs[2]);
  await page.locator('#receipt-verdict').waitFor();
  check((await page.locator('#receipt-verdict').textContent()).startsWith('Receipt verified in this browser'), 'opened from disk, the page reads the ledger across origins and verifies a receipt');
  await shot('11-from-disk');

  // A gateway with its ledger embedded serves the log page too: its checkpoint verified under
  // its pinned descriptor, and consistency checked on the next visit.
  const embDir = join(work, 'gw-embedded');
  const emb = await start('runtime-gateway', ['--embedded', embDir, '--listen', '127.0.0.1:0'], /^try:/);
  const embUrl = `http://${addr(emb.lines, 'listening http ')}`;
  const embCaller = JSON.parse(readFileSync(join(embDir, 'gateway-tokens.json'), 'utf8'))['local-user'].token;
  await http('POST', `${embUrl}/invoke/echo`, { bearer: embCaller, body: { text: 'embedded' } });
  await page.goto(`${embUrl}/app`);
  await page.getByLabel('Token').fill(embCaller);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('button', { name: 'Log out' }).waitFor();
  await page.getByRole('link', { name: 'Pinned logs and policies' }).click();
  await page.getByLabel('Log descriptor (JSON: origin, hash, vkey)').fill(readFileSync(join(embDir, 'log.json'), 'utf8'));
  await page.getByRole('button', { name: 'Pin this log' }).click();
  await page.getByRole('button', { name: /Drop the descriptor of/ }).first().waitFor();
  await page.getByRole('link', { name: 'The log' }).click();
  await page.locator('#tree-size').waitFor();
  const embSize = Number(await page.locator('#tree-size').textContent());
  check(embSize >= 5, `the gateway's /app log page shows its embedded log's verified tree size (${embSize})`);
  await http('POST', `${embUrl}/invoke/echo`, { bearer: embCaller, body: { text: 'embedded, again' } });
  // Until the gateway has signed a checkpoint past that size (polled from here: waitForFunction
  // takes an async predicate's promise as its truthy answer and would not wait).
  while (Number((await (await http('GET', `${embUrl}/v1/checkpoint`, { bearer: embCaller })).text()).split('\n')[1]) <= embSize) {
    await new Promise((r) => setTimeout(r, 20));
  }
  await page.reload();
  await page.locator('#consistency-ok').waitFor();
  check(Number(await page.locator('#tree-size').textContent()) > embSize, "on the next visit the gateway's log has grown and is proven consistent with the size seen before");
  await axe("the gateway's log page");
  await shot('12-gateway-log');

  // ---- several logs on a bus: the gateway's runs in two logs, verified under two pinned descriptors ----
  // The story's ledgers and the embedded gateway are done with: stopped, to keep few processes.
  for (const p of [emb, a, b]) await stop(p.child);
  // One nats-server with JetStream on loopback, on ports of its own choosing (its log names them).
  const natsBin = process.env.A2A_LEDGER_NATS_SERVER;
  check(natsBin !== undefined, `a nats-server is given (A2A_LEDGER_NATS_SERVER: ${natsBin})`);
  const natsConf = join(work, 'nats.conf');
  writeFileSync(
    natsConf,
    `server_name: e2e\nlisten: 127.0.0.1:-1\nhttp: 127.0.0.1:-1\nmax_payload: 8MB\njetstream { store_dir: "${join(work, 'nats')}", sync_interval: always }\n`,
  );
  const nats = await start(natsBin, ['-c', natsConf], /Server is ready/, 'stderr');
  const natsAt = (what) => nats.lines.map((l) => l.match(new RegExp(`${what} on (\\S+)$`))?.[1]).find((x) => x);
  const busUrl = `nats://${natsAt('Listening for client connections')}`;
  for (;;) {
    const r = await fetch(`http://${natsAt('Starting http monitor')}/healthz?js-enabled-only=true`).catch(() => undefined);
    if (r?.ok) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  await run('ledger-server', ['bus', 'init', '--bus', busUrl, '--log', 'main', '--log', 'billing', '--replicas', '1']);
  // Each log its own key and origin, and one ledger-server: its signer, which serves its reads
  // too. Both read the story's server.toml: the gateway's ingest token works on either.
  const shardLogs = {};
  for (const log of ['main', 'billing']) {
    const data = join(work, `shard-${log}`);
    const descriptorFile = join(work, `${log}.json`);
    writeFileSync(descriptorFile, await run('ledger-server', ['init', '--data', data, '--origin', `shards.example/${log}`]));
    const signer = await start(
      'ledger-server',
      ['--data', data, '--config', join(work, 'server.toml'), '--http', '127.0.0.1:0', '--grpc', '127.0.0.1:0',
        '--bus', busUrl, '--bus-log', log, '--bus-name', `${log}-signer`, '--log-descriptor', descriptorFile],
      /^listening grpc /,
    );
    shardLogs[log] = { origin: `shards.example/${log}`, descriptorFile, grpc: `http://${addr(signer.lines, 'listening grpc ')}` };
  }
  // The gateway on the bus: runs of agent `billing` go to log billing, the rest to main.
  const shardDir = join(work, 'gw-sharded');
  mkdirSync(shardDir);
  const shardCaller = token('a2al_local-user');
  writeFileSync(
    join(shardDir, 'gateway.toml'),
    `[[caller]]\nname = "local-user"\ntoken_sha256 = "${sha256hex(shardCaller)}"\n\n` +
      `[[bus_log]]\nname = "billing"\nreplicas = ["${shardLogs.billing.grpc}"]\nagents = ["billing"]\n`,
  );
  writeFileSync(
    join(work, 'agents.toml'),
    '[[agent]]\nname = "demo"\nupstream = { kind = "demo" }\n[[agent.skill]]\nid = "echo"\nname = "Echo"\n\n' +
      '[[agent]]\nname = "billing"\nupstream = { kind = "demo" }\n[[agent.skill]]\nid = "report"\nname = "Report"\n',
  );
  const shardGw = await start(
    'runtime-gateway',
    ['--bus', busUrl, '--bus-replica', shardLogs.main.grpc, '--ledger-token', tokens.ingest, '--manifest', join(work, 'agents.toml'),
      '--data', shardDir, '--listen', '127.0.0.1:0'],
    /^try:/,
  );
  const shardUrl = `http://${addr(shardGw.lines, 'listening http ')}`;
  const shardRuns = {};
  for (const [log, skill, input] of [['main', 'echo', { text: 'hello sharded' }], ['billing', 'report', { title: 'Q4' }]]) {
    const id = (await (await http('POST', `${shardUrl}/invoke/${skill}`, { bearer: shardCaller, body: input })).json()).run;
    const served = await (await http('GET', `${shardUrl}/runs/${id}/receipt?wait=10`, { bearer: shardCaller })).json();
    check(served.log.origin === shardLogs[log].origin, `the ${skill} run ${id} is sealed in log ${log} (its receipt names ${served.log.origin})`);
    shardRuns[log] = id;
  }

  // In the browser: log in on the sharded gateway's /app; it suggests both logs' descriptors.
  await page.goto(`${shardUrl}/app`);
  await page.getByLabel('Token').fill(shardCaller);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('button', { name: 'Log out' }).waitFor();
  await page.getByRole('link', { name: 'Pinned logs and policies' }).click();
  const suggestion = (log) => page.locator('li code', { hasText: `"origin":"${shardLogs[log].origin}"` });
  await suggestion('billing').waitFor();
  check((await suggestion('main').count()) === 1 && (await suggestion('billing').count()) === 1, "the sharded gateway's /app suggests both logs' descriptors");
  // Pin both from the descriptor files, as an auditor given them by the operator would.
  for (const log of ['main', 'billing']) {
    const descriptorField = page.getByLabel('Log descriptor (JSON: origin, hash, vkey)');
    await page.locator('form', { has: descriptorField }).getByLabel('Or load it from a file').setInputFiles(shardLogs[log].descriptorFile);
    await page.waitForFunction((el) => el.value.includes('"origin"'), await descriptorField.elementHandle());
    await page.getByRole('button', { name: 'Pin this log' }).click();
    await page.getByRole('button', { name: `Drop the descriptor of ${shardLogs[log].origin}` }).waitFor();
  }
  check((await page.getByRole('button', { name: /Drop the descriptor of/ }).count()) === 2, 'both logs\' descriptors are pinned, loaded from their files');
  await axe('the pins page with two logs');
  await shot('13-two-logs-pinned');

  // Both runs listed (the default log's first), each verified under its own log's descriptor.
  await page.getByRole('link', { name: 'Runs' }).click();
  await shows([shardRuns.main, shardRuns.billing], "the runs of both logs are listed, the default log's first");
  await axe('the runs page of a sharded gateway');
  const openRun = async (id) => {
    await page.goto(`${shardUrl}/app#/run/${id}`);
    await page.getByRole('heading', { name: `Run ${id}` }).waitFor();
    // The receipt box says "Verifying…" until it has a verdict or names what is missing.
    await page.locator('#receipt-verdict, section[aria-labelledby="h-receipt"] > .problem').first().waitFor();
  };
  for (const log of ['main', 'billing']) {
    await openRun(shardRuns[log]);
    const text = await page.locator('#receipt-verdict').textContent();
    check(text.startsWith(`Receipt verified in this browser: run ${shardRuns[log]}`), `the ${log} run's receipt verifies in the browser under log ${log}'s pinned descriptor`);
    check(text.includes(`under the pinned descriptor of log shards.example/${log}`), `the ${log} run's verdict names the log it was verified under: ${text}`);
    const steps = await page.$$eval('.verdict tbody tr.step-ok', (rows) => rows.map((r) => r.getAttribute('data-step')));
    check(JSON.stringify(steps) === JSON.stringify(['1', '2', '3', '4', '5']), `all five SPEC §5 steps of the ${log} run are shown verified`);
  }
  await axe('the run page of a run in the second log');
  await shot('14-second-log-run-verified');

  // Drop billing's descriptor: its run's receipt is not verified (nor under main's descriptor),
  // and the page names the log whose descriptor is missing; the main run still verifies.
  await page.getByRole('link', { name: 'Pinned logs and policies' }).click();
  await page.getByRole('button', { name: `Drop the descriptor of ${shardLogs.billing.origin}` }).click();
  await page.getByRole('button', { name: `Drop the descriptor of ${shardLogs.billing.origin}` }).waitFor({ state: 'detached' });
  check((await page.getByRole('button', { name: /Drop the descriptor of/ }).count()) === 1, "billing's descriptor is dropped, main's kept");
  await openRun(shardRuns.billing);
  check((await page.locator('#receipt-verdict').count()) === 0, 'the billing run has no verdict once its log is not pinned');
  const missing = await page.locator('section[aria-labelledby="h-receipt"] > .problem').textContent();
  check(missing.includes(`No log pinned for origin ${shardLogs.billing.origin}`), `the billing run's page says its log's descriptor is not pinned: ${missing}`);
  await axe('the run page of a run whose log is not pinned');
  await shot('15-second-log-not-pinned');
  await openRun(shardRuns.main);
  check((await page.locator('#receipt-verdict').textContent()).startsWith(`Receipt verified in this browser: run ${shardRuns.main}`), 'the main run still verifies under its pinned descriptor');

  check(offsite.length === 0, `the browser asked for nothing but loopback${offsite.length ? `: ${offsite.join(', ')}` : ''}`);
  check(consoleErrors.length === 0, `no script error in the page${consoleErrors.length ? `: ${consoleErrors.join(' | ')}` : ''}`);
  await context.close();
  console.log(`screenshots in ${out}`);
}

try {
  await main();
} catch (e) {
  console.error(e);
  process.exitCode = 1;
  if (current) {
    await current.screenshot({ path: join(out, 'failure.png'), fullPage: true }).catch(() => undefined);
    console.error(`the page at the failure (failure.png):\n${await current.locator('main').innerText().catch(() => '(none)')}`);
  }
} finally {
  await browser?.close().catch(() => undefined);
  // Newest first: a ledger-server on the bus is stopped before its nats-server.
  for (const p of [...procs].reverse()) await stop(p);
  rmSync(work, { recursive: true, force: true });
}
