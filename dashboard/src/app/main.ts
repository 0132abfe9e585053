/**
 * The auditor's dashboard. Pages (by the URL's fragment): `#/runs`, `#/run/<id>`, `#/log`,
 * `#/packs`, `#/pins`. Every receipt, checkpoint, consistency proof, payload and pack shown as
 * verified was verified here, against the log descriptors and trust policies pinned in this
 * browser (`pins.ts`), never against what the serving server says of itself.
 */
import './style.css';
import {
  attrsJson,
  blake3Hex,
  decodeEntry,
  fromBase64,
  namedPayloads,
  toHex,
  verifyCheckpoint,
  verifyConsistency,
  verifyPack,
  verifyReceipt,
  type DecodedEntry,
  type LogDescriptor,
  type ReceiptVerdict,
} from '../verify/index.ts';
import * as api from './api.ts';
import { badge, field, h, isoFromNanos, replace } from './dom.ts';
import * as pins from './pins.ts';

interface State {
  me?: api.Me;
  config?: api.Config;
}

const state: State = {};
const root = document.getElementById('app')!;
const announcer = h('p', { class: 'sr-only', role: 'status', 'aria-live': 'polite', id: 'announce' });

function announce(text: string): void {
  announcer.textContent = text;
}

function service(): 'ledger-server' | 'runtime-gateway' {
  return state.config?.service ?? 'ledger-server';
}

/** The serving origin serves the log (checkpoint, proofs, packs): the ledger service, or a gateway with its ledger embedded. */
function servesLog(): boolean {
  return service() === 'ledger-server' || state.config?.endpoints.checkpoint !== undefined;
}

function errorText(e: unknown): string {
  if (e instanceof api.ApiError) return `${e.code}: ${e.message}`;
  return e instanceof Error ? e.message : String(e);
}

function problem(text: string): HTMLElement {
  return h('p', { class: 'problem', role: 'alert' }, text);
}

// ---- the frame -------------------------------------------------------------------------------

function frame(title: string, ...content: (Node | string | null)[]): void {
  const nav = h(
    'nav',
    { 'aria-label': 'Pages' },
    h(
      'ul',
      {},
      ...[
        ['#/runs', 'Runs'],
        ['#/log', 'The log'],
        ['#/packs', 'Packs'],
        ['#/pins', 'Pinned logs and policies'],
      ].map(([href, text]) => h('li', {}, h('a', { href: href!, 'aria-current': location.hash.startsWith(href!) ? 'page' : undefined }, text!))),
    ),
  );
  const who = state.me
    ? h(
        'div',
        { class: 'who' },
        h('span', {}, `${state.me.user}${state.me.roles.length ? ` (${state.me.roles.join(', ')})` : ''}`),
        h('button', { type: 'button', id: 'logout', onclick: () => void doLogout() }, 'Log out'),
      )
    : null;
  const main = h('main', { id: 'main', tabindex: '-1' }, h('h2', {}, title), ...content);
  replace(
    root,
    h('a', { href: '#main', class: 'skip' }, 'Skip to content'),
    h('header', {}, h('h1', {}, 'a2a-ledger auditor'), who),
    state.me ? nav : null,
    main,
    announcer,
  );
  document.title = `${title} · a2a-ledger auditor`;
}

async function doLogout(): Promise<void> {
  try {
    await api.logout();
  } catch {
    /* the session is gone either way */
  }
  state.me = undefined;
  location.hash = '#/runs';
  showLogin();
}

// ---- login -----------------------------------------------------------------------------------

function showLogin(message?: string): void {
  const token = h('input', { type: 'password', name: 'token', autocomplete: 'off', required: true });
  const ledger = h('input', { type: 'url', name: 'ledger', value: pins.ledgerUrl(), placeholder: 'http://127.0.0.1:7700', required: true });
  const out = h('div', {});
  const form = h(
    'form',
    {
      onsubmit: (ev: Event) => {
        ev.preventDefault();
        void (async () => {
          try {
            if (api.fromDisk()) {
              pins.rememberLedgerUrl(ledger.value);
              api.useBearer(ledger.value, token.value);
            }
            state.me = await api.login(token.value);
            token.value = '';
            await route();
          } catch (e) {
            replace(out, problem(`Login refused: ${errorText(e)}`));
          }
        })();
      },
    },
    api.fromDisk() ? field('Ledger URL', ledger, 'The ledger service this page reads (opened from disk, it calls it across origins).') : null,
    field('Token', token, 'A token the API accepts. It becomes a session cookie; it is not stored by this page.'),
    h('button', { type: 'submit' }, 'Log in'),
  );
  frame('Log in', message ? problem(message) : null, form, out);
  token.focus();
}

// ---- pins ------------------------------------------------------------------------------------

function showPins(): void {
  const list = h('ul', { class: 'pins' });
  for (const d of pins.descriptors()) {
    list.append(
      h(
        'li',
        {},
        h('code', {}, d.vkey),
        ` (${d.hash}) `,
        h('button', { type: 'button', 'aria-label': `Drop the descriptor of ${d.origin}`, onclick: () => (pins.dropDescriptor(d.origin), showPins()) }, 'Drop'),
      ),
    );
  }
  const text = h('textarea', { rows: 4, cols: 60, spellcheck: 'false' });
  const file = h('input', { type: 'file', accept: '.json,application/json' });
  file.addEventListener('change', () => void file.files?.[0]?.text().then((t) => (text.value = t)));
  const out = h('div', {});
  const pinForm = h(
    'form',
    {
      onsubmit: (ev: Event) => {
        ev.preventDefault();
        try {
          const d = pins.pinDescriptor(text.value);
          announce(`Pinned the log ${d.origin}`);
          showPins();
        } catch (e) {
          replace(out, problem(`Not pinned: ${errorText(e)}`));
        }
      },
    },
    field('Log descriptor (JSON: origin, hash, vkey)', text, 'Get it from the log operator by a channel you trust, not from this server.'),
    field('Or load it from a file', file),
    h('button', { type: 'submit' }, 'Pin this log'),
    out,
  );
  const suggested = (state.config?.suggested_log_descriptors ?? []).map((s) => {
    const json = JSON.stringify(s);
    return h(
      'li',
      {},
      h('code', {}, json),
      ' ',
      h('button', { type: 'button', onclick: () => (text.value = json) }, 'Copy into the form'),
    );
  });

  const plist = h('ul', { class: 'pins' });
  for (const p of pins.policyTexts()) {
    plist.append(h('li', {}, h('strong', {}, p.name), ' ', h('button', { type: 'button', 'aria-label': `Drop the policy ${p.name}`, onclick: () => (pins.dropPolicy(p.name), showPins()) }, 'Drop')));
  }
  const pname = h('input', { type: 'text', required: true });
  const ptext = h('textarea', { rows: 6, cols: 60, spellcheck: 'false' });
  const pfile = h('input', { type: 'file' });
  pfile.addEventListener('change', () => void pfile.files?.[0]?.text().then((t) => (ptext.value = t)));
  const pout = h('div', {});
  const policyForm = h(
    'form',
    {
      onsubmit: (ev: Event) => {
        ev.preventDefault();
        try {
          pins.pinPolicy(pname.value, ptext.value);
          announce(`Pinned the policy ${pname.value}`);
          showPins();
        } catch (e) {
          replace(pout, problem(`Not pinned: ${errorText(e)}`));
        }
      },
    },
    field('Policy name', pname),
    field('Trust policy (C2SP tlog-policy text)', ptext),
    field('Or load it from a file', pfile),
    h('button', { type: 'submit' }, 'Pin this policy'),
    pout,
  );
  frame(
    'Pinned logs and policies',
    h('p', {}, 'Receipts, checkpoints and packs are verified against these, kept in this browser only.'),
    h('h3', {}, 'Logs'),
    list.childElementCount ? list : h('p', {}, 'No log pinned yet: nothing can be verified.'),
    pinForm,
    suggested.length ? h('section', { 'aria-labelledby': 'sugg' }, h('h4', { id: 'sugg' }, 'Suggested by this server (check before pinning)'), h('ul', {}, ...suggested)) : null,
    h('h3', {}, 'Trust policies'),
    plist.childElementCount ? plist : h('p', {}, 'No trust policy pinned: witness quorums are not required.'),
    policyForm,
  );
}

// ---- runs ------------------------------------------------------------------------------------

interface RunRow {
  run: string;
  index?: number;
  caller?: string;
  skill?: string;
  status?: string;
  agent?: string;
  ts?: bigint;
  entries?: number;
}

interface LedgerRun {
  run: string;
  parent: string | null;
  children: { run: string; index: number }[];
  entries: { index: number; entry: string }[];
}

async function ledgerRun(id: string): Promise<{ run: LedgerRun; entries: (DecodedEntry & { index: bigint })[] }> {
  const run = await api.getJson<LedgerRun>(`/runs/${encodeURIComponent(id)}`);
  const entries = run.entries.map((x) => ({ ...decodeEntry(fromBase64(x.entry)), index: BigInt(x.index) }));
  return { run, entries };
}

/** A row of `/v1/runs?…&summary=true` (both services answer the same fields). */
interface SummaryRow {
  run: string;
  index: number;
  skill?: string;
  caller?: string;
  agent?: string;
  ts?: string;
  status?: string;
  entries?: number;
}

/** A page of `/v1/runs`: a search pages with `cursor`, a listing with `next`. */
interface RunsPage {
  runs: SummaryRow[];
  total?: number;
  next?: number | null;
  cursor?: string | null;
  scan?: string;
}

/**
 * The runs page's query. A search (skill, status, agent, time, caller; every run when nothing is
 * named) runs on the server over its run catalog; a listing by context, parent run, payload or
 * the open runs too (ledger service only). `page` is where the shown page starts (a search's
 * cursor or a listing's `before`), `pages` the starts of the pages before it.
 */
const runsQuery = {
  listBy: '',
  listValue: '',
  caller: '',
  skill: '',
  agent: '',
  status: '',
  from: '',
  until: '',
  page: undefined as string | undefined,
  pages: [] as (string | undefined)[],
};

/** A `datetime-local` value (the browser's local time) as RFC 3339 in UTC, or undefined. */
function rfc3339(local: string): string | undefined {
  if (!local) return undefined;
  const ms = Date.parse(local);
  return Number.isNaN(ms) ? undefined : new Date(ms).toISOString();
}

/** The `/v1/runs` query of `runsQuery`, without its page. */
function runsParams(): URLSearchParams {
  const q = new URLSearchParams();
  const listing = runsQuery.listBy !== '';
  if (listing) {
    if (runsQuery.listBy === 'open') q.set('open', 'true');
    else q.set(runsQuery.listBy, runsQuery.listValue);
  } else {
    const named: [string, string | undefined][] = [
      ['caller', runsQuery.caller.trim()],
      ['skill', runsQuery.skill.trim()],
      ['agent', runsQuery.agent.trim()],
      ['status', runsQuery.status],
      ['from', rfc3339(runsQuery.from)],
      ['until', rfc3339(runsQuery.until)],
    ];
    for (const [k, v] of named) if (v) q.set(k, v);
    if ([...q.keys()].length === 0) q.set('all', 'true');
  }
  q.set('limit', '50');
  q.set('summary', 'true');
  return q;
}

function rowOf(r: SummaryRow): RunRow {
  return {
    run: r.run,
    index: r.index,
    caller: r.caller,
    skill: r.skill,
    status: r.status,
    agent: r.agent,
    ts: r.ts === undefined ? undefined : BigInt(r.ts),
    entries: r.entries,
  };
}

function showRuns(): void {
  const gateway = service() === 'runtime-gateway';
  const listBy = h('select', { name: 'list-by' });
  const listKeys = [['', 'Nothing: search instead'], ['context', 'A2A context'], ['parent', 'Parent run'], ['open', 'Open runs (not sealed)'], ['payload', 'Payload (BLAKE3 hex)']];
  for (const [k, label] of listKeys) listBy.append(h('option', { value: k!, selected: k === runsQuery.listBy }, label!));
  const listValue = h('input', { type: 'search', name: 'list-value', value: runsQuery.listValue });
  const runId = h('input', { type: 'search', name: 'run' });
  const caller = h('input', { type: 'search', name: 'caller', value: runsQuery.caller });
  const skill = h('input', { type: 'search', name: 'skill', value: runsQuery.skill, list: 'skill-ids' });
  const skills = h('datalist', { id: 'skill-ids' }, ...(state.config?.skills ?? []).map((s) => h('option', { value: s.id }, `${s.name} (agent ${s.agent})`)));
  const agent = h('input', { type: 'search', name: 'agent', value: runsQuery.agent });
  const status = h('select', { name: 'status' });
  for (const [k, label] of [['', 'Any'], ['open', 'Open (not sealed)'], ['completed', 'Completed'], ['failed', 'Failed'], ['canceled', 'Canceled'], ['rejected', 'Rejected']]) {
    status.append(h('option', { value: k!, selected: k === runsQuery.status }, label!));
  }
  const since = h('input', { type: 'datetime-local', name: 'since', step: '1', value: runsQuery.from });
  const until = h('input', { type: 'datetime-local', name: 'until', step: '1', value: runsQuery.until });
  const table = h('div', { id: 'runs-table' });
  const pager = h('div', { class: 'pager' });

  const load = async (): Promise<void> => {
    replace(table, h('p', {}, 'Loading…'));
    try {
      const q = runsParams();
      const listing = runsQuery.listBy !== '';
      if (runsQuery.page !== undefined) q.set(listing ? 'before' : 'cursor', runsQuery.page);
      // One request: the rows carry their summaries (no request per run).
      const page = await api.getJson<RunsPage>(`/v1/runs?${q}`);
      const rows = page.runs.map(rowOf);
      const next = listing ? (page.next ?? undefined)?.toString() : (page.cursor ?? undefined);
      const body = h('tbody', {});
      for (const r of rows) {
        body.append(
          h(
            'tr',
            {},
            h('td', {}, h('a', { href: `#/run/${encodeURIComponent(r.run)}` }, r.run)),
            h('td', {}, r.index === undefined ? '' : String(r.index)),
            h('td', {}, r.caller ?? ''),
            h('td', {}, r.skill ?? ''),
            h('td', {}, r.status ?? ''),
            h('td', {}, r.agent ?? ''),
            h('td', {}, r.ts === undefined ? '' : isoFromNanos(r.ts)),
            h('td', {}, r.entries === undefined ? '' : String(r.entries)),
          ),
        );
      }
      const order = listing || page.scan === undefined ? 'newest first' : page.scan === 'time' ? 'newest first by accepted time' : page.scan === 'status' ? 'newest seal first' : 'newest first';
      const more = next !== undefined && rows.length < 50 ? ' More may follow: the server reads a bounded part of the catalog per page.' : '';
      replace(
        table,
        h('p', { id: 'runs-count' }, `${rows.length} runs on this page${page.total !== undefined ? `, ${page.total} in the listing` : ''}, ${order}.${more}`),
        h(
          'table',
          {},
          h('caption', {}, 'Runs'),
          h('thead', {}, h('tr', {}, ...['Run', 'Index', 'Caller', 'Skill', 'Status', 'Agent', 'Accepted (UTC)', 'Entries'].map((c) => h('th', { scope: 'col' }, c)))),
          body,
        ),
      );
      replace(
        pager,
        runsQuery.pages.length
          ? h('button', { type: 'button', onclick: () => ((runsQuery.page = runsQuery.pages.pop()), void load()) }, 'Newer runs')
          : null,
        next !== undefined
          ? h('button', { type: 'button', onclick: () => (runsQuery.pages.push(runsQuery.page), (runsQuery.page = next), void load()) }, 'Older runs')
          : null,
      );
      announce(`${rows.length} runs listed`);
    } catch (e) {
      replace(table, problem(`The runs could not be listed: ${errorText(e)}`));
    }
  };

  const form = h(
    'form',
    {
      role: 'search',
      'aria-label': 'Find runs',
      onsubmit: (ev: Event) => {
        ev.preventDefault();
        if (runId.value.trim()) {
          location.hash = `#/run/${encodeURIComponent(runId.value.trim())}`;
          return;
        }
        Object.assign(runsQuery, {
          listBy: gateway ? '' : listBy.value,
          listValue: listValue.value,
          caller: caller.value,
          skill: skill.value,
          agent: agent.value,
          status: status.value,
          from: since.value,
          until: until.value,
          page: undefined,
          pages: [],
        });
        void load();
      },
    },
    h(
      'fieldset',
      {},
      h('legend', {}, 'Search (on the server, over every run)'),
      field('Skill', skill, 'A skill id, exactly.'),
      skills,
      field('Status', status),
      field('Agent', agent, 'The identity that recorded the run (the actor of its task.accepted), exactly.'),
      field('Caller', caller, gateway ? 'Yours unless you are an admin.' : 'Exactly as task.accepted names it.'),
      field('Accepted from (local time)', since),
      field('Accepted before (local time)', until),
      h('p', {}, 'Nothing named: every run you may read, newest first.'),
    ),
    gateway
      ? null
      : h(
          'fieldset',
          {},
          h('legend', {}, 'Or list by'),
          field('List runs by', listBy),
          field('Value', listValue, 'The context, parent run or payload hash to list by.'),
        ),
    h('fieldset', {}, h('legend', {}, 'Or open one run'), field('Run id', runId)),
    h('button', { type: 'submit' }, 'Search'),
  );
  frame('Runs', form, table, pager);
  void load();
}

// ---- one run ---------------------------------------------------------------------------------

function stepsTable(v: ReceiptVerdict, id: string, log?: LogDescriptor): HTMLElement {
  // With several logs pinned, the verdict says which log's descriptor it was verified under.
  const under = log ? `, under the pinned descriptor of log ${log.origin}` : '';
  if (v.malformed) return problem(`The receipt could not be checked: ${v.malformed}`);
  const body = h('tbody', {});
  for (const s of v.steps) {
    body.append(
      h(
        'tr',
        { class: s.ok ? 'step-ok' : s.reached ? 'step-bad' : 'step-skip', 'data-step': String(s.step) },
        h('td', {}, `§5 step ${s.step}`),
        h('td', {}, s.name),
        h('td', {}, s.ok ? badge('ok', 'verified') : s.reached ? badge('bad', 'FAILED') : badge('info', 'not reached')),
        h('td', {}, s.index === undefined ? '' : `index ${s.index}`),
        h('td', {}, s.error ?? ''),
      ),
    );
  }
  return h(
    'div',
    { class: 'verdict' },
    h('p', { class: v.ok ? 'ok' : 'bad', role: v.ok ? undefined : 'alert', id }, v.ok ? `Receipt verified in this browser: run ${v.run}, ${v.status ?? ''}${under}.` : `Receipt INVALID${under}: ${v.message ?? v.failed?.error ?? ''}`),
    h('table', {}, h('caption', {}, id === 'receipt-verdict' ? 'SPEC §5 steps of the served receipt' : 'SPEC §5 steps of the receipt file'), h('thead', {}, h('tr', {}, ...['Step', 'Name', 'Verdict', 'Index', 'Detail'].map((c) => h('th', { scope: 'col' }, c)))), body),
    v.quorum
      ? h('p', {}, `Witness quorum (§8): ${v.quorum.satisfied ? 'met' : 'NOT met'}; cosigned: ${v.quorum.cosigned.join(', ') || 'none'}; missing: ${v.quorum.missing.join(', ') || 'none'}.`)
      : h('p', {}, 'No trust policy pinned for this log: §8 witness quorum not checked.'),
  );
}

/** Verifies receipt JSON against the pinned descriptor of the log it names. */
async function verifyAgainstPins(json: string): Promise<{ verdict?: ReceiptVerdict; log?: LogDescriptor; missing?: string }> {
  let origin: string | undefined;
  try {
    origin = (JSON.parse(json) as { log?: { origin?: string } }).log?.origin;
  } catch {
    /* verifyReceipt says what is wrong */
  }
  const pinned = origin ? pins.descriptorFor(origin) : pins.descriptors()[0];
  if (!pinned) return { missing: origin ?? '(none named)' };
  const policy = pins.policyFor(pinned.origin);
  return { verdict: await verifyReceipt(json, pinned, policy ? { policy: policy.policy } : {}), log: pinned };
}

function entriesTable(entries: (DecodedEntry & { index: bigint })[], verified: boolean): HTMLElement {
  const body = h('tbody', {});
  for (const e of entries) {
    body.append(
      h(
        'tr',
        {},
        h('td', {}, String(e.index)),
        h('td', {}, String(e.seq)),
        h('td', {}, e.kind),
        h('td', {}, isoFromNanos(e.ts)),
        h('td', {}, e.actor),
        h('td', {}, e.grant ?? ''),
        h('td', {}, h('code', {}, JSON.stringify(attrsJson(e)))),
      ),
    );
  }
  return h(
    'table',
    { id: 'entries' },
    h('caption', {}, verified ? 'Entries (from the verified receipt)' : 'Entries (as the server gave them; not covered by a verified receipt)'),
    h('thead', {}, h('tr', {}, ...['Index', 'Seq', 'Kind', 'Time (UTC)', 'Actor', 'Grant', 'Attrs'].map((c) => h('th', { scope: 'col' }, c)))),
    body,
  );
}

/** A payload fetched by hash and checked against it, or why not. */
async function payloadRow(hex: string, names: string): Promise<HTMLElement> {
  const row = h('li', { 'data-payload': hex }, h('code', {}, hex.slice(0, 16) + '…'), ` ${names}: `);
  try {
    const bytes = await api.getBytes(`/v1/payloads/${hex}`);
    if (blake3Hex(bytes) !== hex) {
      row.append(badge('bad', 'MISMATCH'), ` the server sent ${bytes.length} bytes whose BLAKE3 is ${blake3Hex(bytes)}`);
      return row;
    }
    row.append(badge('ok', 'verified'), ` ${bytes.length} bytes`);
    const text = new TextDecoder('utf-8', { fatal: false }).decode(bytes.slice(0, 2048));
    row.append(h('pre', {}, text + (bytes.length > 2048 ? '\n…' : '')));
  } catch (e) {
    if (e instanceof api.ApiError && e.code === 'payload_erased') {
      row.append(badge('warn', 'erased'), ' ', await erasure(e.index));
    } else if (e instanceof api.ApiError && e.status === 404) {
      row.append(badge('info', 'not held'), ' the server does not hold these bytes');
    } else {
      row.append(badge('warn', 'not fetched'), ` ${errorText(e)}`);
    }
  }
  return row;
}

/** "erased on … by … because …", from the erasure entry at `index`. */
async function erasure(index: number | undefined): Promise<string> {
  if (index === undefined) return 'erased (the erasure entry was not named)';
  try {
    const got = await api.getJson<{ entries: string[] }>(`/v1/entries?start=${index}&end=${index + 1}`);
    const e = decodeEntry(fromBase64(got.entries[0]!));
    return `erased on ${isoFromNanos(e.ts)} by ${String(e.attrs.approver)} because ${String(e.attrs.reason)} (entry ${index})`;
  } catch (err) {
    return `erased by entry ${index} (its details could not be read: ${errorText(err)})`;
  }
}

async function showRun(id: string): Promise<void> {
  const receiptBox = h('section', { 'aria-labelledby': 'h-receipt' }, h('h3', { id: 'h-receipt' }, 'Receipt'), h('p', {}, 'Verifying…'));
  const entriesBox = h('section', { 'aria-labelledby': 'h-entries' }, h('h3', { id: 'h-entries' }, 'Entries'));
  const detailsBox = h('section', { 'aria-labelledby': 'h-details' }, h('h3', { id: 'h-details' }, 'Workspace, payloads, messages, evals and reviews'));
  const treeBox = h('section', { 'aria-labelledby': 'h-tree' }, h('h3', { id: 'h-tree' }, 'Parent and child runs'));
  const fileBox = receiptFileForm();
  frame(`Run ${id}`, receiptBox, entriesBox, detailsBox, treeBox, fileBox);

  let verified: (DecodedEntry & { index: bigint })[] | undefined;
  try {
    const json = await api.getText(`/runs/${encodeURIComponent(id)}/receipt`);
    const { verdict, missing, log } = await verifyAgainstPins(json);
    if (!verdict) {
      replace(receiptBox, h('h3', { id: 'h-receipt' }, 'Receipt'), problem(`No log pinned for origin ${missing}: pin its descriptor (Pinned logs) to verify this receipt.`));
    } else {
      replace(receiptBox, h('h3', { id: 'h-receipt' }, 'Receipt'), stepsTable(verdict, 'receipt-verdict', log));
      if (verdict.ok && verdict.entries) verified = verdict.entries;
    }
  } catch (e) {
    replace(receiptBox, h('h3', { id: 'h-receipt' }, 'Receipt'), h('p', {}, `No receipt: ${errorText(e)}`));
  }

  let entries = verified;
  let parent: string | null = null;
  let children: { run: string }[] = [];
  if (service() === 'ledger-server') {
    try {
      const got = await ledgerRun(id);
      parent = got.run.parent;
      children = got.run.children;
      entries ??= got.entries;
    } catch (e) {
      entriesBox.append(problem(`The run's entries could not be read: ${errorText(e)}`));
    }
  } else {
    try {
      const got = await api.getJson<{ parent: string | null; children: { run: string }[] }>(`/runs/${encodeURIComponent(id)}`);
      parent = got.parent;
      children = got.children;
    } catch (e) {
      treeBox.append(problem(errorText(e)));
    }
  }
  if (entries) {
    entriesBox.append(entriesTable(entries, verified !== undefined));
    const ws = entries.filter((e) => e.kind === 'workspace.read' || e.kind === 'workspace.written');
    detailsBox.append(
      h('h4', {}, 'Workspace operations'),
      ws.length
        ? h('ul', {}, ...ws.map((e) => h('li', {}, `${e.kind === 'workspace.read' ? 'read' : 'wrote'} ${String(e.attrs.path)} (${String(e.attrs.bytes)} bytes, ${toHex(e.attrs.hash as Uint8Array).slice(0, 16)}…)`)))
        : h('p', {}, 'None.'),
    );
    const named = new Map<string, string[]>();
    for (const e of entries) {
      for (const hash of namedPayloads(e)) {
        const hex = toHex(hash);
        const what = e.kind === 'task.accepted' ? 'input' : e.kind === 'artifact.added' ? `artifact ${String(e.attrs.name)}` : e.kind;
        named.set(hex, [...(named.get(hex) ?? []), what]);
      }
    }
    const plist = h('ul', { id: 'payloads' });
    detailsBox.append(h('h4', {}, 'Input and artifacts (fetched by hash, checked here)'), plist);
    for (const [hex, names] of named) plist.append(await payloadRow(hex, names.join(', ')));
    const messages = entries.filter((e) => e.kind === 'task.status' || e.kind === 'skill.progress' || e.kind.startsWith('task.f') || e.kind === 'workspace.denied');
    detailsBox.append(
      h('h4', {}, 'Status messages'),
      h('ul', {}, ...messages.map((e) => h('li', {}, `${isoFromNanos(e.ts)} ${e.kind}: ${String(e.attrs.state ?? e.attrs.stage ?? '')} ${String(e.attrs.message ?? e.attrs.error ?? e.attrs.reason ?? '')}`))),
    );
    const evals = entries.filter((e) => e.kind === 'eval.scored' || e.kind === 'review.signed');
    detailsBox.append(
      h('h4', {}, 'Evals and reviews'),
      evals.length
        ? h('ul', {}, ...evals.map((e) => h('li', {}, e.kind === 'eval.scored' ? `eval ${String(e.attrs.rubric)}: ${Number(e.attrs.score_milli as bigint) / 1000} (failures: ${(e.attrs.failures as string[]).join(', ') || 'none'})` : `review by ${String(e.attrs.approver)}: ${String(e.attrs.notes)}`)))
        : h('p', {}, 'None.'),
    );
  }
  treeBox.append(
    h('p', {}, 'Parent: ', parent ? h('a', { href: `#/run/${encodeURIComponent(parent)}` }, parent) : 'none'),
    children.length ? h('ul', {}, ...children.map((c) => h('li', {}, h('a', { href: `#/run/${encodeURIComponent(c.run)}` }, c.run)))) : h('p', {}, 'No child runs.'),
  );
  announce(`Run ${id} loaded`);
}

/** Verify a receipt file (one downloaded earlier, or one someone handed over). */
function receiptFileForm(): HTMLElement {
  const file = h('input', { type: 'file', accept: '.json,application/json', id: 'receipt-file' });
  const out = h('div', { id: 'receipt-file-verdict' });
  file.addEventListener('change', () => {
    const f = file.files?.[0];
    if (!f) return;
    void f.text().then(async (json) => {
      const { verdict, missing, log } = await verifyAgainstPins(json);
      replace(out, verdict ? stepsTable(verdict, 'file-verdict', log) : problem(`No log pinned for origin ${missing}.`));
      announce(verdict?.ok ? 'The receipt file verified' : 'The receipt file did not verify');
    });
  });
  return h('section', { 'aria-labelledby': 'h-file' }, h('h3', { id: 'h-file' }, 'Verify a receipt file'), field('Receipt file (JSON)', file), out);
}

// ---- the log ---------------------------------------------------------------------------------

const FIRST_SEEN = 'a2a-ledger.first-seen.';

async function showLog(): Promise<void> {
  if (!servesLog()) {
    frame('The log', h('p', {}, 'This gateway writes to a ledger service, which serves the checkpoints and consistency proofs: open its /app.'));
    return;
  }
  const box = h('div', { id: 'log-state' }, h('p', {}, 'Verifying the newest checkpoint…'));
  const compare = h('textarea', { rows: 6, cols: 70, spellcheck: 'false' });
  const compareOut = h('div', { id: 'compare-out' });
  const form = h(
    'form',
    {
      onsubmit: (ev: Event) => {
        ev.preventDefault();
        // A signed note ends with a newline, which a text field may have lost.
        const pasted = compare.value.replace(/\r\n/g, '\n').trim();
        void checkLog(box, pasted ? `${pasted}\n` : undefined, compareOut);
      },
    },
    field('Compare with a checkpoint you saw elsewhere (signed note)', compare, 'Leave empty to compare with the last checkpoint this browser verified.'),
    h('button', { type: 'submit' }, 'Check consistency'),
  );
  frame('The log', box, form, compareOut);
  await checkLog(box);
}

async function checkLog(box: HTMLElement, other?: string, out: HTMLElement = box): Promise<void> {
  try {
    const note = await api.getText('/v1/checkpoint');
    const origin = note.split('\n')[0] ?? '';
    const log = pins.descriptorFor(origin);
    if (!log) {
      replace(box, problem(`No log pinned for origin ${origin}: pin its descriptor to verify its checkpoints.`));
      return;
    }
    const policy = pins.policyFor(origin);
    const v = await verifyCheckpoint(note, log, policy ? { policy: policy.policy } : {});
    if (!v.ok || !v.checkpoint) {
      replace(box, problem(`The newest checkpoint does NOT verify under the pinned descriptor: ${v.error}`), h('pre', {}, note));
      return;
    }
    const size = v.checkpoint.size;
    const firstKey = `${FIRST_SEEN}${origin}.${size}`;
    if (!localStorage.getItem(firstKey)) localStorage.setItem(firstKey, String(Date.now()));
    const age = Math.round((Date.now() - Number(localStorage.getItem(firstKey))) / 1000);
    const witnesses = v.signers.filter((s) => s.name !== origin).map((s) => s.name);
    const rows: HTMLElement[] = [
      h('dt', {}, 'Origin'),
      h('dd', {}, origin),
      h('dt', {}, 'Tree size'),
      h('dd', { id: 'tree-size' }, String(size)),
      h('dt', {}, 'Root'),
      h('dd', {}, h('code', {}, toHex(v.checkpoint.root))),
      h('dt', {}, 'Checkpoint age'),
      h('dd', {}, `this size first seen by this browser ${age} s ago`),
      h('dt', {}, 'Witness cosignatures on the note'),
      h('dd', {}, witnesses.length ? witnesses.join(', ') : 'none'),
    ];
    if (v.quorum) rows.push(h('dt', {}, `Quorum of policy ${policy?.name}`), h('dd', {}, `${v.quorum.satisfied ? 'met' : 'NOT met'}: cosigned ${v.quorum.cosigned.join(', ') || 'none'}; missing ${v.quorum.missing.join(', ') || 'none'}`));
    const before = other ?? pins.lastSeen(origin);
    const consistency = h('div', { id: 'consistency' });
    replace(box, h('dl', {}, ...rows), consistency);
    if (before === undefined) {
      pins.rememberSeen(origin, note);
      replace(consistency, h('p', {}, 'First checkpoint this browser has seen of this log: remembered for the next visit.'));
      return;
    }
    const older = await verifyCheckpoint(before, log);
    if (!older.ok || !older.checkpoint) {
      replace(out === box ? consistency : out, problem(`The earlier checkpoint does not verify under the pinned descriptor: ${older.error}`));
      return;
    }
    let a = before;
    let b = note;
    if (older.checkpoint.size > size) [a, b] = [note, before];
    const from = older.checkpoint.size > size ? size : older.checkpoint.size;
    const to = older.checkpoint.size > size ? older.checkpoint.size : size;
    let proof: Uint8Array[] = [];
    if (from !== to && from !== 0n) {
      try {
        const p = await api.getJson<{ proof: string[] }>(`/v1/proof/consistency?from=${from}&to=${to}`);
        proof = p.proof.map(fromBase64);
      } catch (e) {
        if (older.checkpoint.size <= size) throw e;
        // The server cannot prove up to a size past its own: the tree shrank, which verifyConsistency names.
      }
    }
    const c = older.checkpoint.size > size ? await verifyConsistency(before, note, [], log) : await verifyConsistency(a, b, proof, log);
    const target = out === box ? consistency : out;
    if (c.ok) {
      if (other === undefined) pins.rememberSeen(origin, note);
      replace(target, h('p', { class: 'ok', id: 'consistency-ok' }, `Consistent: the checkpoint of size ${from} is a prefix of size ${to} (proof verified here).`));
      announce('The log is consistent with the last checkpoint seen');
    } else {
      replace(
        target,
        h(
          'div',
          { class: 'alarm', role: 'alert', id: 'fork-alarm' },
          h('h3', {}, c.fork ? 'FORK: two checkpoints of this log disagree' : 'Consistency not shown'),
          h('p', {}, c.error ?? ''),
          h('h4', {}, 'Earlier checkpoint'),
          h('pre', {}, before),
          h('h4', {}, 'Newest checkpoint'),
          h('pre', {}, note),
          h('p', {}, 'Keep both as evidence: each is signed by the log key. The remembered checkpoint was not replaced.'),
        ),
      );
    }
  } catch (e) {
    replace(out, problem(`The log could not be checked: ${errorText(e)}`));
  }
}

// ---- packs -----------------------------------------------------------------------------------

function showPacks(): void {
  const logs = pins.descriptors();
  const start = h('input', { type: 'number', min: '0', value: '0', name: 'start' });
  const end = h('input', { type: 'number', min: '0', name: 'end' });
  const withPayloads = h('input', { type: 'checkbox', name: 'payloads' });
  const link = h('a', { id: 'pack-link', href: '#/packs' }, 'Download the pack');
  const update = () => {
    const q = new URLSearchParams({ start: start.value || '0' });
    if (end.value) q.set('end', end.value);
    if (withPayloads.checked) q.set('payloads', 'true');
    link.setAttribute('href', api.url(`/v1/pack?${q}`));
    link.setAttribute('download', `pack-${q.get('start')}-${end.value || 'newest'}.tar`);
  };
  for (const el of [start, end, withPayloads]) el.addEventListener('input', update);
  // From disk the link cannot carry the bearer token: fetch the pack with it, then save it.
  link.addEventListener('click', (ev) => {
    if (!api.fromDisk()) return;
    ev.preventDefault();
    void (async () => {
      const href = link.getAttribute('href') ?? '';
      const blob = await (await api.request('GET', href.slice(api.url('').length))).blob();
      const a = h('a', { href: URL.createObjectURL(blob), download: link.getAttribute('download') ?? 'pack.tar' });
      a.click();
      URL.revokeObjectURL(a.href);
    })().catch((e) => announce(`The pack could not be downloaded: ${errorText(e)}`));
  });
  update();
  void api
    .getText('/v1/checkpoint')
    .then((n) => {
      const size = n.split('\n')[1];
      if (size && !end.value) {
        end.value = size;
        update();
      }
    })
    .catch(() => undefined);

  const which = h('select', { name: 'log' });
  for (const d of logs) which.append(h('option', { value: d.origin }, d.origin));
  const file = h('input', { type: 'file', accept: '.tar,application/x-tar', id: 'pack-file' });
  const progress = h('progress', { id: 'pack-progress', max: '1', value: '0', 'aria-label': 'Pack verification progress' });
  const out = h('div', { id: 'pack-verdict' });
  const drop = h('div', { class: 'drop', tabindex: '0', role: 'button', 'aria-label': 'Drop a pack file here, or press Enter to choose one' }, 'Drop a pack file here');
  const verify = async (f: File) => {
    const log = pins.descriptorFor(which.value);
    if (!log) {
      replace(out, problem('Pin the log the pack is of first.'));
      return;
    }
    progress.max = f.size || 1;
    replace(out, h('p', {}, `Verifying ${f.name} (${f.size} bytes)…`));
    const policy = pins.policyFor(log.origin);
    const v = await verifyPack(f.stream() as ReadableStream<Uint8Array>, log, {
      ...(policy ? { policy: policy.policy } : {}),
      onProgress: (n) => (progress.value = n),
    });
    progress.value = progress.max;
    const r = v.report;
    replace(
      out,
      v.ok
        ? h('p', { class: 'ok', id: 'pack-ok' }, `Pack verified: entries [${r?.start}, ${r?.end}) of a tree of ${r?.treeSize}, ${v.entriesRead} entries, ${r?.sealsVerified} seals verified.`)
        : problem(`Pack INVALID: ${v.message ?? v.malformed ?? ''}`),
      r
        ? h(
            'ul',
            {},
            h('li', {}, `Payloads included and checked: ${r.payloadsIncluded}`),
            h('li', {}, `Payloads named but absent: ${r.payloadsAbsent.length}`),
            ...r.payloadsErased.map((e) => h('li', {}, `Payload ${e.hash.slice(0, 16)}… erased on ${isoFromNanos(e.ts)} by ${e.approver} because ${e.reason} (entry ${e.index})`)),
            ...r.partial.map((p) => h('li', {}, `Run ${p.run}: ${p.reason}`)),
          )
        : null,
    );
    announce(v.ok ? 'The pack verified' : 'The pack did not verify');
  };
  file.addEventListener('change', () => {
    const f = file.files?.[0];
    if (f) void verify(f);
  });
  drop.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' || ev.key === ' ') {
      ev.preventDefault();
      file.click();
    }
  });
  drop.addEventListener('dragover', (ev) => ev.preventDefault());
  drop.addEventListener('drop', (ev) => {
    ev.preventDefault();
    const f = ev.dataTransfer?.files[0];
    if (f) void verify(f);
  });
  frame(
    'Packs',
    servesLog()
      ? h('section', { 'aria-labelledby': 'h-dl' }, h('h3', { id: 'h-dl' }, 'Download'), field('First entry', start), field('End (exclusive)', end), field('With payloads', withPayloads), h('p', {}, link))
      : h('p', {}, 'This gateway writes to a ledger service, which serves the packs: download them from its /app.'),
    h(
      'section',
      { 'aria-labelledby': 'h-verify' },
      h('h3', { id: 'h-verify' }, 'Verify a pack file'),
      logs.length ? field('Log the pack is of (pinned)', which) : problem('Pin a log descriptor first.'),
      field('Pack file (tar)', file),
      drop,
      progress,
      out,
    ),
  );
}

// ---- routing ---------------------------------------------------------------------------------

async function route(): Promise<void> {
  if (!state.me) {
    showLogin();
    return;
  }
  const hash = location.hash || '#/runs';
  if (hash.startsWith('#/run/')) await showRun(decodeURIComponent(hash.slice('#/run/'.length)));
  else if (hash.startsWith('#/log')) await showLog();
  else if (hash.startsWith('#/packs')) showPacks();
  else if (hash.startsWith('#/pins')) showPins();
  else showRuns();
  document.getElementById('main')?.focus();
}

async function start(): Promise<void> {
  try {
    state.config = await api.config();
    state.me = await api.whoami();
  } catch (e) {
    frame('a2a-ledger auditor', problem(`The server could not be reached: ${errorText(e)}`));
    return;
  }
  window.addEventListener('hashchange', () => void route());
  await route();
}

void start();
