// Helpers for the policy and audit tests (tests/e2e/policy-*.test.mjs): the audit
// trail as the gateway writes it (<state_dir>/audit.jsonl, docs/audit.md) and as
// `mcpgate audit` reads it, service-account tokens made with the CLI, and raw MCP
// sessions with a bearer token (fetch, so that a test sees the exact bytes of every
// answer). Every wait is bounded.
import fs from 'node:fs';
import path from 'node:path';
import { LATEST_PROTOCOL, MCPGATE_BIN, messagesOf, parseSSE, postMcp } from './harness.mjs';
import { cli, cliOk, pollUntil, run } from './identity.mjs';

/** The documented JSON-RPC codes of the policy phase (src/gw/decide.c). */
export const CODE = {
  DENIED: -32013, // a call the caller may see but not make
  AUDIT_UNAVAILABLE: -32014, // the audit sink fails, audit.on_failure: deny
  BATCH_REFUSED: -32015, // an innocent element of a refused batch
  HEADER_MISMATCH: -32020, // Mcp-Method / Mcp-Name disagree with the body
  UNKNOWN: -32602, // a hidden (or unknown) tool, prompt or resource
  PARSE: -32700, // not JSON, not JSON-RPC, ambiguous
  INVALID_REQUEST: -32600,
};

/** The audit file of a gateway started by the harness (the default sink path). */
export function auditPath(gw) {
  return path.join(gw.tmp, 'state', 'audit.jsonl');
}

/** Every record in the gateway's audit file, parsed, in file order. */
export function readAudit(gw) {
  const file = auditPath(gw);
  if (!fs.existsSync(file)) return [];
  return fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
}

/**
 * Waits (bounded) until the audit file holds a record matching pred; resolves it.
 * Records are written by the writer thread a few milliseconds after the decision.
 */
export async function waitAudit(gw, pred, { ms = 3000, what = 'audit record' } = {}) {
  const rec = await pollUntil(() => readAudit(gw).find(pred), { ms, intervalMs: 20 });
  if (!rec) {
    const last = readAudit(gw).slice(-6).map((r) => JSON.stringify(r)).join('\n');
    throw new Error(`no ${what} within ${ms} ms; last records:\n${last}`);
  }
  return rec;
}

/** Waits until the audit file holds at least n records; resolves them all. */
export async function waitAuditCount(gw, n, { ms = 3000 } = {}) {
  const all = await pollUntil(() => { const r = readAudit(gw); return r.length >= n ? r : null; }, { ms, intervalMs: 20 });
  if (!all) throw new Error(`audit file has ${readAudit(gw).length} records, expected at least ${n} within ${ms} ms`);
  return all;
}

/** `mcpgate audit query --json ARGS -c CONFIG`, parsed. */
export async function auditQuery(configPath, args = []) {
  const r = await cliOk(configPath, ['audit', 'query', '--json', ...args]);
  return JSON.parse(r.stdout);
}

/** `mcpgate audit verify -c CONFIG`, or `--file F` alone when file is given: { code, stdout, stderr }. */
export function auditVerify(configPath, { file } = {}) {
  if (file) return run(MCPGATE_BIN, ['audit', 'verify', '--file', file]);
  return cli(configPath, ['audit', 'verify']);
}

/** `mcpgate service-accounts create NAME --groups G -c CONFIG`: the token it prints. */
export async function serviceToken(configPath, name, groups = []) {
  const args = ['service-accounts', 'create', name];
  if (groups.length) args.push('--groups', groups.join(','));
  const r = await cliOk(configPath, args);
  const token = r.stdout.trim();
  if (!/^mcpg_sa_[A-Za-z0-9_-]+$/.test(token)) throw new Error(`service-accounts create printed ${JSON.stringify(r.stdout)}`);
  return token;
}

/**
 * A raw MCP session on url with `Authorization: Bearer token` (none if token is null): initialize (at
 * protocolVersion) and notifications/initialized. Returns { sessionId, protocolVersion,
 * post(body, opts) } where post() sends one body (object, array or raw string) in the
 * session (a Buffer is sent byte for byte) and resolves { status, headers, text, messages }.
 */
export async function rawSession(url, token, { protocolVersion = LATEST_PROTOCOL, timeoutMs = 10_000 } = {}) {
  const auth = token ? { authorization: `Bearer ${token}` } : {};
  const init = await postMcp(url, {
    jsonrpc: '2.0', id: 1, method: 'initialize',
    params: { protocolVersion, capabilities: {}, clientInfo: { name: 'mcpgate-e2e-policy', version: '1.0.0' } },
  }, { headers: auth, timeoutMs });
  if (init.status !== 200) throw new Error(`initialize: HTTP ${init.status}: ${init.text.slice(0, 300)}`);
  const result = init.messages.find((m) => m.id === 1)?.result;
  if (result?.protocolVersion !== protocolVersion) throw new Error(`initialize answered ${init.text.slice(0, 300)}`);
  const sessionId = init.headers.get('mcp-session-id');
  const post = async (body, { headers = {}, protocolVersion: pv = protocolVersion } = {}) => {
    if (!Buffer.isBuffer(body)) return postMcp(url, body, { sessionId, protocolVersion: pv, headers: { ...auth, ...headers }, timeoutMs });
    // Bytes as they are (postMcp would serialise a Buffer as JSON).
    const res = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json', accept: 'application/json, text/event-stream',
        'mcp-session-id': sessionId, 'mcp-protocol-version': pv, ...auth, ...headers,
      },
      body,
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    return { status: res.status, headers: res.headers, text, messages: messagesOf(res.headers.get('content-type'), text) };
  };
  const n = await post({ jsonrpc: '2.0', method: 'notifications/initialized' });
  if (n.status !== 202 && n.status !== 200) throw new Error(`notifications/initialized: HTTP ${n.status}`);
  return { sessionId, protocolVersion, post, token };
}

/** A tools/call request object. */
export function call(id, name, args = {}) {
  return { jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } };
}

/**
 * POSTs body and reads the answer as it arrives (an SSE stream): events[] gets
 * { at (ms since the epoch), msg } for every complete event. Returns { status,
 * contentType, events, done } where done resolves when the stream ends (or rejects
 * after timeoutMs, cancelling it).
 */
export async function openStream(url, { headers = {}, body, timeoutMs = 20_000 } = {}) {
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(new Error(`stream still open after ${timeoutMs} ms`)), timeoutMs);
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
    body: JSON.stringify(body),
    signal: ctrl.signal,
  });
  const events = [];
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  let buf = '';
  const done = (async () => {
    try {
      for (;;) {
        const { value, done: end } = await reader.read();
        if (end) return events;
        buf += dec.decode(value, { stream: true }).replace(/\r\n/g, '\n');
        const cut = buf.lastIndexOf('\n\n');
        if (cut < 0) continue;
        const complete = buf.slice(0, cut + 2);
        buf = buf.slice(cut + 2);
        for (const e of parseSSE(complete)) if (e.data) events.push({ at: Date.now(), msg: JSON.parse(e.data) });
      }
    } finally {
      clearTimeout(timer);
    }
  })();
  return { status: res.status, contentType: res.headers.get('content-type') ?? '', events, done };
}
