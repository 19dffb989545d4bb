// Helpers for the identity tests (tests/e2e/identity-*.test.mjs): a gateway in front of
// mcp-sqlite on routes behind sign-in, the admin CLI, and the OAuth requests of
// docs/identity.md made by hand (PKCE, registration, the authorization endpoint driven
// with the form browser, token, refresh, revocation, calls to a route with a bearer
// token). Every wait is bounded; every process goes through the harness, which kills it
// when the test file ends.
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { spawn } from 'node:child_process';
import {
  MCPGATE_BIN, LATEST_PROTOCOL, identityConfig, messagesOf, sleep, startGateway, startSqlite, tmpDir, waitExit,
} from './harness.mjs';
import { Browser, signIn } from './browser.mjs';

export const TOKEN_PATH = '/_mcpgate/oauth/token';
export const AUTHORIZE_PATH = '/_mcpgate/oauth/authorize';
export const REGISTER_PATH = '/_mcpgate/oauth/register';
export const REVOKE_PATH = '/_mcpgate/oauth/revoke';

/** token_id as logs and the CLI show it: the first 16 hex digits of the token's SHA-256. */
export function tokenId(token) {
  return crypto.createHash('sha256').update(token).digest('hex').slice(0, 16);
}

/** A PKCE pair (RFC 7636, S256). */
export function pkcePair() {
  const verifier = crypto.randomBytes(32).toString('base64url');
  const challenge = crypto.createHash('sha256').update(verifier).digest('base64url');
  return { verifier, challenge };
}

/** The same token with one character of its secret part changed. */
export function altered(token) {
  const i = token.length - 5;
  const c = token[i] === 'A' ? 'B' : 'A';
  return token.slice(0, i) + c + token.slice(i + 1);
}

/**
 * Parses a WWW-Authenticate header with one challenge: { scheme, params }.
 * `Bearer error="invalid_token", resource_metadata="https://..."`.
 */
export function parseChallenge(header) {
  if (!header) return null;
  const m = /^\s*([A-Za-z][A-Za-z0-9_-]*)\s*(.*)$/s.exec(header);
  if (!m) return { scheme: null, params: {}, raw: header };
  const params = {};
  const re = /\s*([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?/gy;
  let p;
  while ((p = re.exec(m[2])) !== null && p[0] !== '') {
    params[p[1].toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : p[3];
  }
  return { scheme: m[1], params, raw: header };
}

/** Runs a child process, bounded: { code, signal, stdout, stderr }. */
export function run(cmd, args, { input, env = {}, timeoutMs = 20_000, cwd } = {}) {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env }, cwd });
    let stdout = '';
    let stderr = '';
    p.stdout.setEncoding('utf8').on('data', (d) => { stdout += d; });
    p.stderr.setEncoding('utf8').on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('close', (code, signal) => { clearTimeout(timer); resolve({ code, signal, stdout, stderr }); });
    p.on('error', (e) => { clearTimeout(timer); resolve({ code: -1, signal: null, stdout, stderr: e.message }); });
    p.stdin.on('error', () => {});
    p.stdin.end(input ?? '');
  });
}

/** `mcpgate ARGS -c CONFIG` (the admin CLI on the gateway's configuration). */
export function cli(configPath, args, opts) {
  return run(MCPGATE_BIN, [...args, '-c', configPath], opts);
}

/** Like cli(), but throws unless it exits 0. */
export async function cliOk(configPath, args, opts) {
  const r = await cli(configPath, args, opts);
  if (r.code !== 0) {
    throw new Error(`mcpgate ${args.join(' ')} exited ${r.code ?? r.signal}:\n${r.stdout}${r.stderr}`);
  }
  return r;
}

/** `mcpgate users add EMAIL --groups a,b --password-stdin -c CONFIG`. */
export function addUser(configPath, email, password, { groups = [] } = {}) {
  const args = ['users', 'add', email];
  if (groups.length) args.push('--groups', groups.join(','));
  args.push('--password-stdin');
  return cliOk(configPath, args, { input: `${password}\n` });
}

/**
 * A gateway with identity in front of one mcp-sqlite (HTTP): routes `sql` and `sql2`
 * (both behind sign-in, same upstream) unless `routes` is given; `upstream` reuses a
 * running mcp-sqlite. store: 'sqlite' (the default file under state_dir), or a
 * `store:` block ({postgres: DSN}). Returns { gw, upstream, issuer, url(route), config }.
 */
export async function startIdentityGateway({
  name, store, oauth = {}, routes, upstream, port, extra = {}, identityProviders, workers = 2, stateDir, env,
} = {}) {
  const up = upstream ?? await startSqlite('http', { name: `${name}-sqlite` });
  const routeSpecs = routes ?? [
    { name: 'sql', to: up.url, public: false },
    { name: 'sql2', to: up.url, public: false },
  ];
  const cfg = {
    ...identityConfig({
      store: store && store !== 'sqlite' ? store : undefined,
      oauth,
      identityProviders,
    }),
    ...(stateDir ? { state_dir: stateDir } : {}),
    ...extra,
  };
  const gw = await startGateway({ name, routes: routeSpecs, extra: cfg, port, workers, env });
  return {
    gw,
    upstream: up,
    ownUpstream: !upstream,
    issuer: gw.url,
    url: (route = 'sql') => gw.routeUrl(route),
    config: gw.configPath,
    async stop() {
      try { await gw.stop(); } finally { if (!upstream) await up.stop(); }
    },
  };
}

/** A form POST (or JSON with json: true) to the issuer; { status, headers, text, json }. */
export async function post(base, pathname, data, { json = false, basic, headers = {}, timeoutMs = 10_000 } = {}) {
  const h = { ...headers };
  let body;
  if (json) {
    h['content-type'] = 'application/json';
    body = typeof data === 'string' ? data : JSON.stringify(data);
  } else {
    h['content-type'] = 'application/x-www-form-urlencoded';
    body = new URLSearchParams(Object.entries(data).filter(([, v]) => v !== undefined)).toString();
  }
  if (basic) {
    h.authorization = `Basic ${Buffer.from(`${encodeURIComponent(basic[0])}:${encodeURIComponent(basic[1])}`).toString('base64')}`;
  }
  const res = await fetch(new URL(pathname, base), {
    method: 'POST', headers: h, body, redirect: 'manual', signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  let parsed;
  try { parsed = JSON.parse(text); } catch { parsed = undefined; }
  return { status: res.status, headers: res.headers, text, json: parsed };
}

/** GET a JSON document; { status, headers, json }. */
export async function getJson(url, { timeoutMs = 10_000 } = {}) {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'manual' });
  const text = await res.text();
  let parsed;
  try { parsed = JSON.parse(text); } catch { parsed = undefined; }
  return { status: res.status, headers: res.headers, text, json: parsed };
}

/** RFC 7591 registration of a public client with these redirect URIs; resolves the response JSON. */
export async function registerClient(base, { redirectUris, name = 'e2e-client', extra = {} } = {}) {
  const r = await post(base, REGISTER_PATH, {
    client_name: name,
    redirect_uris: redirectUris,
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'none',
    ...extra,
  }, { json: true });
  if (r.status !== 201 || !r.json?.client_id) throw new Error(`registration: HTTP ${r.status}: ${r.text.slice(0, 300)}`);
  return r.json;
}

/** The authorization endpoint URL with these query parameters (undefined ones left out). */
export function authorizeUrl(base, params) {
  const u = new URL(AUTHORIZE_PATH, base);
  for (const [k, v] of Object.entries(params)) if (v !== undefined) u.searchParams.set(k, v);
  return u.href;
}

/** Default authorization request parameters for a client: PKCE S256, state, resource. */
export function authParams({ clientId, redirectUri, resource, scope, state, pkce = pkcePair() }) {
  return {
    params: {
      response_type: 'code',
      client_id: clientId,
      redirect_uri: redirectUri,
      state: state ?? crypto.randomBytes(8).toString('hex'),
      code_challenge: pkce.challenge,
      code_challenge_method: 'S256',
      resource,
      scope,
    },
    pkce,
  };
}

/**
 * The whole browser side: authorize -> sign-in form -> consent -> redirect_uri. Resolves
 * { code, state, iss, callback, verifier, browser, page }. A browser may be passed to
 * reuse its session.
 */
export async function browserAuthorize(base, {
  clientId, redirectUri, resource, email, password, scope, browser = new Browser(), decision = 'allow', provider,
} = {}) {
  const { params, pkce } = authParams({ clientId, redirectUri, resource, scope });
  const page = await signIn(browser, authorizeUrl(base, params), { stopAt: redirectUri, email, password, decision, provider });
  const cb = page.callback;
  if (!cb.code) throw new Error(`no code at redirect_uri: ${JSON.stringify(cb.params)}`);
  if (cb.state !== params.state) throw new Error(`state ${cb.state} != ${params.state}`);
  return { code: cb.code, state: cb.state, iss: cb.iss, callback: cb, verifier: pkce.verifier, browser, page, params };
}

/** POST /token grant_type=authorization_code. */
export function exchangeCode(base, { code, verifier, clientId, redirectUri, resource, extra = {} }) {
  return post(base, TOKEN_PATH, {
    grant_type: 'authorization_code', code, code_verifier: verifier, client_id: clientId, redirect_uri: redirectUri,
    resource, ...extra,
  });
}

/** POST /token grant_type=refresh_token. */
export function refreshToken(base, { refreshToken: rt, clientId, resource }) {
  return post(base, TOKEN_PATH, { grant_type: 'refresh_token', refresh_token: rt, client_id: clientId, resource });
}

/** POST /revoke (RFC 7009) for a public client. */
export function revokeToken(base, { token, clientId, hint }) {
  return post(base, REVOKE_PATH, { token, client_id: clientId, token_type_hint: hint });
}

/** Registers a client, signs in and exchanges the code: resolves { clientId, redirectUri, tokens }. */
export async function obtainTokens(base, { resource, email, password, redirectUri, clientId, browser } = {}) {
  const ru = redirectUri ?? `http://127.0.0.1:${40000 + crypto.randomInt(20000)}/callback`;
  const cid = clientId ?? (await registerClient(base, { redirectUris: [ru] })).client_id;
  const a = await browserAuthorize(base, { clientId: cid, redirectUri: ru, resource, email, password, browser });
  const t = await exchangeCode(base, { code: a.code, verifier: a.verifier, clientId: cid, redirectUri: ru, resource });
  if (t.status !== 200) throw new Error(`token: HTTP ${t.status}: ${t.text.slice(0, 300)}`);
  return { clientId: cid, redirectUri: ru, tokens: t.json, code: a.code, verifier: a.verifier, iss: a.iss };
}

const INIT = (id = 1) => ({
  jsonrpc: '2.0', id, method: 'initialize',
  params: { protocolVersion: LATEST_PROTOCOL, capabilities: {}, clientInfo: { name: 'mcpgate-e2e-identity', version: '1.0.0' } },
});

/**
 * POSTs an MCP initialize to a route with `Authorization: Bearer token` (or the raw
 * `authorization` header value given, or none). method 'GET' / 'DELETE' send no body.
 * Resolves { status, headers, text, messages, challenge, ms }.
 */
export async function callRoute(url, token, { authorization, method = 'POST', host, body, timeoutMs = 10_000 } = {}) {
  const headers = { accept: 'application/json, text/event-stream' };
  if (authorization !== undefined) headers.authorization = authorization;
  else if (token) headers.authorization = `Bearer ${token}`;
  const started = Date.now();
  let status;
  let hdrs;
  let text;
  if (host) {
    // A Host other than the URL's (a second instance behind one public name): node:http.
    const u = new URL(url);
    const payload = method === 'POST' ? JSON.stringify(body ?? INIT()) : null;
    const r = await new Promise((resolve, reject) => {
      const req = http.request({
        host: u.hostname, port: u.port, path: u.pathname, method,
        headers: {
          ...headers, host, ...(payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}),
        },
        timeout: timeoutMs, agent: false,
      }, (res) => {
        let data = '';
        res.setEncoding('utf8');
        res.on('data', (d) => { data += d; });
        res.on('end', () => resolve({ status: res.statusCode, headers: new Headers(res.headers), text: data }));
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`${method} ${url}: timed out after ${timeoutMs} ms`)));
      req.on('error', reject);
      req.end(payload ?? undefined);
    });
    ({ status, headers: hdrs, text } = r);
  } else {
    const init = { method, headers, signal: AbortSignal.timeout(timeoutMs), redirect: 'manual' };
    if (method === 'POST') {
      init.headers['content-type'] = 'application/json';
      init.body = JSON.stringify(body ?? INIT());
    }
    const res = await fetch(url, init);
    status = res.status;
    hdrs = res.headers;
    text = await res.text();
  }
  return {
    status, headers: hdrs, text, messages: messagesOf(hdrs.get('content-type'), text),
    challenge: parseChallenge(hdrs.get('www-authenticate')), ms: Date.now() - started,
  };
}

/** Polls fn() (async, truthy = done) every intervalMs for at most ms; resolves its value or null. */
export async function pollUntil(fn, { ms = 5000, intervalMs = 20 } = {}) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() >= deadline) return null;
    await sleep(intervalMs);
  }
}

/** Waits (bounded) for an access log line matching pred; resolves it or throws with the last lines. */
export async function waitLogLine(gw, pred, { ms = 3000, what = 'access log line' } = {}) {
  const line = await pollUntil(() => gw.accessLog().find(pred), { ms });
  if (!line) {
    throw new Error(`no ${what} within ${ms} ms; last lines:\n${gw.accessLog().slice(-8).map((l) => JSON.stringify(l)).join('\n')}`);
  }
  return line;
}

/** A plain TCP listener on 127.0.0.1 that counts connections (and answers nothing useful). */
export async function connectionCounter() {
  const net = await import('node:net');
  const srv = net.createServer((s) => { srv.connections += 1; s.destroy(); });
  srv.connections = 0;
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  return { port: srv.address().port, count: () => srv.connections, close: () => new Promise((r) => srv.close(r)) };
}

/** A state directory that outlives one gateway process (for restarts on the same state). */
export function stateDir() {
  const d = tmpDir('mcpgate-state-');
  fs.mkdirSync(path.join(d, 'state'), { recursive: true });
  return path.join(d, 'state');
}

/** SIGKILLs a gateway (no clean shutdown) and waits for it to be gone. */
export async function killHard(gw) {
  gw.proc.kill('SIGKILL');
  if (!(await waitExit(gw.proc, 5000))) throw new Error('gateway still running 5 s after SIGKILL');
}
