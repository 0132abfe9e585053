/**
 * The one way the page talks to a server. Served at `/app`, it calls its own origin with the
 * session cookie (and the session's CSRF token on every request that changes state); opened from
 * disk it calls the ledger URL the user typed with `Authorization: Bearer`, the token held in
 * this page's memory only. Nothing a server answers is trusted: receipts, checkpoints, proofs and
 * payloads are verified by the caller of these functions.
 */

/** Who the session is (`/auth/session`). */
export interface Me {
  user: string;
  roles: string[];
  scopes: Record<string, unknown>;
  csrf_token?: string;
  expires_in_secs?: number;
}

/** A typed error answer. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly index?: number,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

interface Connection {
  /** '' for the serving origin, else the typed ledger URL without a trailing slash. */
  base: string;
  /** Opened from disk: a bearer token instead of the cookie. */
  token?: string;
  csrf?: string;
}

const conn: Connection = { base: '' };

/** The page runs from disk (no serving origin to call). */
export function fromDisk(): boolean {
  return location.protocol === 'file:';
}

/** Points the page at a ledger URL with a bearer token (from disk). */
export function useBearer(base: string, token: string): void {
  conn.base = base.replace(/\/+$/, '');
  conn.token = token;
}

/** The absolute URL of a path. */
export function url(path: string): string {
  return conn.base + path;
}

async function fail(r: Response): Promise<never> {
  let code = `http_${r.status}`;
  let message = `${r.status} ${r.statusText}`;
  let index: number | undefined;
  try {
    const body = (await r.json()) as { error?: { code?: unknown; status?: unknown; message?: unknown; index?: unknown } };
    const e = body.error ?? {};
    if (typeof e.code === 'string') code = e.code;
    else if (typeof e.status === 'string') code = e.status.toLowerCase();
    if (typeof e.message === 'string') message = e.message;
    if (typeof e.index === 'number') index = e.index;
  } catch {
    /* not JSON: keep the status */
  }
  throw new ApiError(r.status, code, message, index);
}

/** A request; a non-2xx answer throws `ApiError` with the server's code. */
export async function request(method: string, path: string, opts: { body?: unknown; headers?: Record<string, string> } = {}): Promise<Response> {
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  if (conn.token !== undefined) headers.authorization = `Bearer ${conn.token}`;
  else if (method !== 'GET' && method !== 'HEAD' && conn.csrf !== undefined) headers['x-csrf-token'] = conn.csrf;
  let body: string | undefined;
  if (opts.body !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(opts.body);
  }
  const r = await fetch(url(path), {
    method,
    headers,
    body,
    credentials: conn.token !== undefined ? 'omit' : 'same-origin',
    cache: 'no-store',
  });
  if (!r.ok) return fail(r);
  return r;
}

export async function getJson<T>(path: string, headers?: Record<string, string>): Promise<T> {
  return (await (await request('GET', path, { headers })).json()) as T;
}

export async function getText(path: string): Promise<string> {
  return (await request('GET', path)).text();
}

export async function getBytes(path: string): Promise<Uint8Array> {
  return new Uint8Array(await (await request('GET', path)).arrayBuffer());
}

/** Logs in with a token (served: a session cookie; from disk: the bearer token, checked by a read). */
export async function login(token: string): Promise<Me> {
  if (fromDisk()) {
    conn.token = token;
    // A read every principal may make tells whether the token is known.
    await getJson('/v1/runs?open=true&limit=1');
    return { user: 'bearer token', roles: [], scopes: {} };
  }
  const me = await (await request('POST', '/auth/session', { body: { token } })).json() as Me;
  conn.csrf = me.csrf_token;
  return me;
}

/** The current session, or undefined. */
export async function whoami(): Promise<Me | undefined> {
  if (fromDisk()) return undefined;
  try {
    const me = await getJson<Me>('/auth/session');
    conn.csrf = me.csrf_token;
    return me;
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return undefined;
    throw e;
  }
}

/** Ends the session. */
export async function logout(): Promise<void> {
  if (fromDisk()) {
    conn.token = undefined;
    return;
  }
  try {
    await request('DELETE', '/auth/session');
  } finally {
    conn.csrf = undefined;
  }
}

/** `/app/config.json`, or undefined from disk. */
export interface Config {
  service: 'ledger-server' | 'runtime-gateway';
  bundle_integrity: string;
  endpoints: Record<string, string>;
  skills: { id: string; name: string; agent: string; description: string; input_schema: unknown }[];
  suggested_log_descriptors: unknown[];
}

export async function config(): Promise<Config | undefined> {
  if (fromDisk()) return undefined;
  return getJson<Config>('/app/config.json');
}
