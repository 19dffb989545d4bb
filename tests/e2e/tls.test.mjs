// TLS on both sides of the gateway.
//   1. No certificate configured and not insecure: the gateway generates a self-signed
//      certificate in state_dir (key 0600), serves MCP over TLS with it (curl, the official
//      SDK client in a child process trusting it via NODE_EXTRA_CA_CERTS), negotiates ALPN
//      http/1.1 (also for clients offering h2 first), refuses TLS 1.1, closes connections
//      that never finish the handshake (request_header), and reuses the same certificate
//      after a restart.
//   2. Several certificates (tls.certificates) chosen by SNI, with tls.min_version "1.3":
//      the certificate presented follows the SNI name (first one without SNI or for an
//      unknown name), routes on a.test and b.test both work with curl --resolve.
//   3. HTTPS upstreams: verification against tls_custom_ca_file, failure (502 with the
//      request's JSON-RPC id) against the system store or with a wrong tls_server_name,
//      tls_skip_verify, tls_server_name naming the certificate, IP-literal upstreams
//      (checked against the IP SAN), SNI and ALPN sent upstream, and what the upstream
//      gets of the caller's headers (no Authorization, no _mcpgate* cookies, X-Forwarded-*
//      set).
// Certificates are made at test time with the openssl CLI in a temporary directory.
//
// Every gateway here listens with TLS, and routes must be declared with their https
// origin including the gateway's port, which startGateway() only picks when it starts:
// the gateway starts with placeholder routes (port 1), then the real routes are written
// and applied with SIGHUP (startTlsGateway below).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import tls from 'node:tls';
import {
  DIRECT, LATEST_PROTOCOL, curl, messagesOf, rawHttp, sleep, startGateway, startSqlite, tmpDir, within,
} from './lib/harness.mjs';

const T = { timeout: 60_000 };
const SKIP = DIRECT ? 'E2E_DIRECT=1: TLS tests need the gateway' : false;

// ---------------------------------------------------------------------------
// Child processes of this file (openssl s_client, the SDK client): bounded, and killed
// when the test process exits.

const mine = new Set();
process.on('exit', () => {
  for (const p of mine) { try { p.kill('SIGKILL'); } catch { /* gone */ } }
});

/** Runs cmd (bounded, stdin from /dev/null); resolves { code, signal, stdout, stderr, out, timedOut }. */
function run(cmd, args, { timeoutMs = 15_000, env } = {}) {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env });
    mine.add(p);
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    p.stdout.setEncoding('utf8').on('data', (d) => { stdout += d; });
    p.stderr.setEncoding('utf8').on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => { timedOut = true; p.kill('SIGKILL'); }, timeoutMs);
    const done = (code, signal, err) => {
      clearTimeout(timer);
      mine.delete(p);
      if (err) stderr += `\nspawn error: ${err.message}`;
      resolve({ code, signal, stdout, stderr, out: `${stdout}\n${stderr}`, timedOut });
    };
    p.on('close', (code, signal) => done(code, signal));
    p.on('error', (e) => done(-1, null, e));
  });
}

// ---------------------------------------------------------------------------
// Certificates (openssl CLI)

function openssl(args, cwd) {
  return execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], timeout: 20_000 });
}

/** A CA and leaf certificates signed by it, in a fresh temporary directory. */
function makePki() {
  const dir = tmpDir('mcpgate-e2e-pki-');
  const f = (name) => path.join(dir, name);
  openssl(['req', '-x509', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '2', '-subj', '/CN=mcpgate e2e test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  const leaf = (name, cn, san) => {
    fs.writeFileSync(f(`${name}.ext`), [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature',
      'extendedKeyUsage=serverAuth',
      `subjectAltName=${san}`,
    ].join('\n') + '\n');
    openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`), '-subj', `/CN=${cn}`], dir);
    openssl(['x509', '-req', '-in', f(`${name}.csr`), '-CA', f('ca.pem'), '-CAkey', f('ca.key'),
      '-set_serial', `0x${crypto.randomBytes(8).toString('hex')}`, '-days', '2', '-sha256',
      '-extfile', f(`${name}.ext`), '-out', f(`${name}.pem`)], dir);
    return { cert: f(`${name}.pem`), key: f(`${name}.key`) };
  };
  return {
    dir,
    ca: f('ca.pem'),
    a: leaf('a', 'a.test', 'DNS:a.test'),
    b: leaf('b', 'b.test', 'DNS:b.test'),
    upstream: leaf('upstream', 'localhost', 'DNS:localhost,IP:127.0.0.1'),
  };
}

let pkiCache = null;
const pki = () => (pkiCache ??= makePki());

function fingerprintOfFile(pemFile) {
  return new crypto.X509Certificate(fs.readFileSync(pemFile)).fingerprint256;
}

// ---------------------------------------------------------------------------
// The gateway with TLS and https routes

/**
 * Starts a TLS gateway whose routes are declared by routesFor(port) (port: the gateway's
 * own, for the `from` URLs). See the note at the top of the file.
 */
async function startTlsGateway({ name, routesFor, tlsConf, extra = {} }) {
  const cfg = { insecure_server: false, ...(tlsConf ? { tls: tlsConf } : {}), ...extra };
  const gw = await startGateway({ name, routes: routesFor(1), extra: cfg });
  try {
    // The ports accept connections before the gateway installs its signal handlers, and a
    // SIGHUP in that window kills it (reported as a bug): wait for the "listening" line,
    // which is logged once the handlers are in place.
    const listening = Date.now() + 10_000;
    while (!gw.logs().some((l) => /^mcpgate .* listening on https:\/\//.test(l.msg ?? ''))) {
      if (!gw.alive() || Date.now() > listening) {
        throw new Error(`the gateway did not log "listening on https://" (exit code ${gw.proc.exitCode}, `
          + `signal ${gw.proc.signalCode}):\n${gw.stderrText().slice(-3000)}`);
      }
      await sleep(10);
    }
    const reloaded = () => gw.logs().filter((l) => /^configuration reloaded/.test(l.msg ?? '')).length;
    const before = reloaded();
    gw.updateConfig({ routes: routesFor(gw.port), extra: cfg });
    await gw.reload({ waitMs: 5000 });
    const deadline = Date.now() + 10_000;
    while (reloaded() === before) {
      if (!gw.alive() || Date.now() > deadline || gw.logs().some((l) => /reload failed/.test(l.msg ?? ''))) {
        throw new Error(`the gateway did not apply the https routes (exit code ${gw.proc.exitCode}, `
          + `signal ${gw.proc.signalCode}):\n${gw.stderrText().slice(-3000)}`);
      }
      await sleep(25);
    }
  } catch (e) {
    await gw.stop().catch(() => {});
    throw e;
  }
  return gw;
}

/**
 * The access-log lines of one route, once there are at least n of them (the gateway writes
 * a line after the response, so it may arrive after the client has its answer; waits at
 * most timeoutMs). Each route's requests are made by one test only.
 */
async function accessLogOf(gw, route, n, { timeoutMs = 5000 } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const lines = gw.accessLog().filter((l) => l.route === route);
    if (lines.length >= n || Date.now() > deadline) return lines;
    await sleep(20);
  }
}

// ---------------------------------------------------------------------------
// Clients

/**
 * One HTTP request with curl; -i output parsed. resolve: 'host:port:127.0.0.1' for --resolve.
 * Returns { status, headers (lower-case names), text, messages, stderr }.
 */
async function curlHttp(url, { cacert, resolve, body, headers = {}, verbose = false, extraArgs = [] } = {}) {
  const args = ['-i', '--cacert', cacert, ...(resolve ? ['--resolve', resolve] : []), ...(verbose ? ['-v'] : [])];
  for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}: ${v}`);
  if (body !== undefined) args.push('--data-binary', typeof body === 'string' ? body : JSON.stringify(body));
  args.push(...extraArgs, url);
  const r = await curl(args);
  if (r.code !== 0) throw new Error(`curl ${url} exited ${r.code}: ${r.stderr.slice(-1500)}`);
  const sep = r.stdout.indexOf('\r\n\r\n');
  const head = sep >= 0 ? r.stdout.slice(0, sep) : r.stdout;
  const text = sep >= 0 ? r.stdout.slice(sep + 4) : '';
  const lines = head.split('\r\n');
  const m = /^HTTP\/1\.1 (\d{3})/.exec(lines[0]);
  const hdrs = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    if (i > 0) hdrs[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  return { status: m ? Number(m[1]) : null, statusLine: lines[0], headers: hdrs, text,
    messages: messagesOf(hdrs['content-type'], text), stderr: r.stderr };
}

const MCP_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };

/** initialize, notifications/initialized and a tools/call (query) with curl; asserts each. */
async function curlMcpSession(url, { cacert, resolve }) {
  const init = await curlHttp(url, {
    cacert, resolve, headers: MCP_HEADERS,
    body: { jsonrpc: '2.0', id: 1, method: 'initialize',
      params: { protocolVersion: LATEST_PROTOCOL, capabilities: {}, clientInfo: { name: 'mcpgate-e2e-tls-curl', version: '1.0.0' } } },
  });
  assert.equal(init.status, 200, `initialize: ${init.statusLine} ${init.text.slice(0, 300)}`);
  const sid = init.headers['mcp-session-id'];
  assert.match(sid ?? '', /^[0-9a-f]{32}$/, `Mcp-Session-Id issued: ${JSON.stringify(init.headers)}`);
  const res = init.messages.find((x) => x.id === 1);
  assert.equal(res?.result?.serverInfo?.name, 'mcp-sqlite', init.text);
  assert.equal(res.result.protocolVersion, LATEST_PROTOCOL);

  const session = { 'mcp-session-id': sid, 'mcp-protocol-version': LATEST_PROTOCOL, ...MCP_HEADERS };
  const note = await curlHttp(url, { cacert, resolve, headers: session, body: { jsonrpc: '2.0', method: 'notifications/initialized' } });
  assert.equal(note.status, 202, `notifications/initialized: ${note.statusLine}`);

  const call = await curlHttp(url, {
    cacert, resolve, headers: session,
    body: { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'query', arguments: { sql: 'SELECT 40 + 2 AS answer' } } },
  });
  assert.equal(call.status, 200, `tools/call: ${call.statusLine} ${call.text.slice(0, 300)}`);
  const cr = call.messages.find((x) => x.id === 2);
  assert.ok(cr?.result, `tools/call result: ${call.text.slice(0, 300)}`);
  assert.notEqual(cr.result.isError, true, call.text);
  const text = cr.result.content.map((c) => c.text).join('\n');
  assert.deepEqual(JSON.parse(text).rows, [[42]], `query result: ${text}`);
  return { sid, init, call };
}

/** openssl s_client against the gateway (bounded); args are appended. */
function sClient(port, args) {
  return run('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, ...args], { timeoutMs: 15_000 });
}

/** The certificate subject in openssl s_client output ("subject=CN = b.test"). */
function subjectOf(out) {
  return /^subject=(.*)$/m.exec(out)?.[1]?.trim() ?? null;
}

/** A direct TLS connection: { fingerprint256, subject, alpn, protocol }. */
function tlsProbe(port, { servername, ca, ALPNProtocols } = {}) {
  return within(10_000, new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername, ca, ALPNProtocols }, () => {
      const c = s.getPeerCertificate();
      const r = { fingerprint256: c.fingerprint256, subject: c.subject, alpn: s.alpnProtocol, protocol: s.getProtocol() };
      s.end();
      s.destroy();
      resolve(r);
    });
    s.once('error', reject);
  }), `TLS probe of 127.0.0.1:${port}`);
}

/**
 * One request with node:https to the gateway (127.0.0.1, SNI and Host from the URL),
 * bounded. Returns { status, headers, text, messages }.
 */
function httpsRequest(url, { method = 'POST', headers = {}, body, ca, timeoutMs = 10_000 } = {}) {
  const u = new URL(url);
  const data = body === undefined ? undefined : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
  return within(timeoutMs + 1000, new Promise((resolve, reject) => {
    const req = https.request({
      host: '127.0.0.1', port: Number(u.port), path: u.pathname + u.search, method, servername: u.hostname,
      ca, agent: false, timeout: timeoutMs,
      headers: { host: u.host, ...(data ? { 'content-length': data.length } : {}), ...headers },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text,
        messages: messagesOf(res.headers['content-type'], text) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`request to ${url} timed out`)));
    req.on('error', reject);
    req.end(data);
  }), `POST ${url}`);
}

// The official SDK client, run in a child process so that NODE_EXTRA_CA_CERTS (read at
// start-up) makes it trust the gateway's certificate.
const SDK_CLIENT_URL = import.meta.resolve('@modelcontextprotocol/sdk/client/index.js');
const SDK_HTTP_URL = import.meta.resolve('@modelcontextprotocol/sdk/client/streamableHttp.js');
const SDK_CHILD = `
const { Client } = await import(process.env.SDK_CLIENT_URL);
const { StreamableHTTPClientTransport } = await import(process.env.SDK_HTTP_URL);
const client = new Client({ name: 'mcpgate-e2e-tls-sdk', version: '1.0.0' }, { capabilities: {} });
const transport = new StreamableHTTPClientTransport(new URL(process.env.MCP_URL));
let out;
try {
  await client.connect(transport, { timeout: 10000 });
  const { tools } = await client.listTools(undefined, { timeout: 10000 });
  const call = await client.callTool({ name: 'query', arguments: { sql: 'SELECT 6 * 7 AS answer' } }, undefined, { timeout: 10000 });
  const sessionId = transport.sessionId;
  await transport.terminateSession();
  out = { ok: true, sessionId, server: client.getServerVersion(), tools: tools.map((t) => t.name),
    text: call.content.map((c) => c.text).join('\\n') };
} catch (e) {
  out = { ok: false, error: String(e && e.message || e), cause: String(e && e.cause && (e.cause.code || e.cause.message) || '') };
}
await client.close().catch(() => {});
process.stdout.write(JSON.stringify(out));
process.exit(0);
`;

async function sdkChild(url, { extraCa } = {}) {
  const env = { ...process.env, SDK_CLIENT_URL, SDK_HTTP_URL, MCP_URL: url };
  delete env.NODE_TEST_CONTEXT;
  delete env.NODE_EXTRA_CA_CERTS;
  if (extraCa) env.NODE_EXTRA_CA_CERTS = extraCa;
  const r = await run(process.execPath, ['--input-type=module', '-e', SDK_CHILD], { timeoutMs: 30_000, env });
  try {
    return JSON.parse(r.stdout);
  } catch {
    throw new Error(`SDK child: exit ${r.code}${r.timedOut ? ' (timed out)' : ''}: ${r.stdout.slice(0, 500)} ${r.stderr.slice(-1500)}`);
  }
}

// ---------------------------------------------------------------------------

describe('no certificate configured: self-signed in state_dir', { skip: SKIP }, () => {
  let sqlite;
  let gw;
  let stateDir;
  let crt;
  let key;
  let url;
  let original; // { crt, key, fingerprint } as generated by the first start
  const routesFor = (port) => [{ name: 'sql', from: `https://localhost:${port}/sql`, to: sqlite.url }];

  before(async () => {
    sqlite = await startSqlite('http', { name: 'tls-selfsigned-sqlite' });
    stateDir = path.join(tmpDir('mcpgate-e2e-tls-'), 'state');
    crt = path.join(stateDir, 'selfsigned.crt');
    key = path.join(stateDir, 'selfsigned.key');
    gw = await startTlsGateway({ name: 'tls-selfsigned', routesFor, extra: { state_dir: stateDir, timeouts: { request_header: '2s' } } });
    url = `https://localhost:${gw.port}/sql`;
  });
  after(async () => {
    await gw?.stop().catch(() => {});
    await sqlite?.stop();
  });

  test('selfsigned.crt and selfsigned.key generated in state_dir, key mode 0600', T, () => {
    assert.ok(fs.existsSync(crt), `${crt} exists`);
    assert.ok(fs.existsSync(key), `${key} exists`);
    assert.equal(fs.statSync(key).mode & 0o777, 0o600, `key mode ${(fs.statSync(key).mode & 0o777).toString(8)}`);
    assert.deepEqual(fs.readdirSync(stateDir).filter((n) => n.startsWith('selfsigned')).sort(),
      ['selfsigned.crt', 'selfsigned.key'], 'no temporary files left behind');
    const x = new crypto.X509Certificate(fs.readFileSync(crt));
    assert.equal(x.subject, 'CN=mcpgate localhost');
    assert.equal(x.issuer, 'CN=mcpgate localhost');
    assert.match(x.subjectAltName ?? '', /\bDNS:localhost\b/);
    assert.match(x.subjectAltName ?? '', /\bIP Address:127\.0\.0\.1\b/);
    assert.ok(x.checkPrivateKey(crypto.createPrivateKey(fs.readFileSync(key))), 'key matches certificate');
    original = { crt: fs.readFileSync(crt), key: fs.readFileSync(key), fingerprint: x.fingerprint256 };
  });

  test('the gateway presents that certificate', T, async () => {
    const p = await tlsProbe(gw.port, { servername: 'localhost', ca: fs.readFileSync(crt) });
    assert.equal(p.fingerprint256, fingerprintOfFile(crt));
    assert.equal(p.subject.CN, 'mcpgate localhost');
  });

  test('curl --cacert selfsigned.crt: initialize (200, Mcp-Session-Id), tools/call', T, async () => {
    await curlMcpSession(url, { cacert: crt });
    const log = await accessLogOf(gw, 'sql', 3);
    assert.deepEqual(log.map((l) => [l.route, l.method, l.status]), [['sql', 'POST', 200], ['sql', 'POST', 202], ['sql', 'POST', 200]],
      `access log: ${JSON.stringify(log)}`);
  });

  test('curl without the CA refuses the certificate (the client really verifies)', T, async () => {
    const r = await curl(['-o', '/dev/null', '-w', '%{http_code}', url]);
    assert.equal(r.code, 60, `curl exit code 60 (peer certificate cannot be authenticated), got ${r.code}: ${r.stderr}`);
  });

  test('ALPN: curl offers h2,http/1.1 and the server accepts http/1.1', T, async () => {
    const r = await curlHttp(url, { cacert: crt, verbose: true, headers: MCP_HEADERS,
      body: { jsonrpc: '2.0', id: 1, method: 'ping' } });
    assert.match(r.stderr, /ALPN(?::|,) offer(?:s|ing) h2/, 'curl offered h2');
    assert.match(r.stderr, /ALPN(?::|,) server accepted(?: to use)? http\/1\.1/, `ALPN http/1.1 negotiated:\n${r.stderr}`);
    assert.doesNotMatch(r.stderr, /server accepted(?: to use)? h2/);
    assert.match(r.statusLine, /^HTTP\/1\.1 /);
  });

  test('ALPN with openssl s_client and node:tls', T, async () => {
    const both = await sClient(gw.port, ['-servername', 'localhost', '-alpn', 'h2,http/1.1']);
    assert.equal(both.code, 0, both.out);
    assert.match(both.out, /^ALPN protocol: http\/1\.1$/m);
    const h1 = await sClient(gw.port, ['-servername', 'localhost', '-alpn', 'http/1.1']);
    assert.match(h1.out, /^ALPN protocol: http\/1\.1$/m);
    // Only h2 offered: no ALPN agreed (RFC 7301 allows the server to ignore it), but the
    // handshake itself succeeds.
    const h2 = await sClient(gw.port, ['-servername', 'localhost', '-alpn', 'h2']);
    assert.equal(h2.code, 0, h2.out);
    assert.match(h2.out, /^No ALPN negotiated$/m);
    assert.equal(subjectOf(h2.out), 'CN = mcpgate localhost');
    const p = await tlsProbe(gw.port, { servername: 'localhost', ca: fs.readFileSync(crt), ALPNProtocols: ['h2', 'http/1.1'] });
    assert.equal(p.alpn, 'http/1.1');
  });

  test('TLS 1.1 is refused, TLS 1.2 and 1.3 are accepted', T, async () => {
    // SECLEVEL=0 lets this OpenSSL offer TLS 1.1 at all; the server must answer with a
    // protocol_version alert (70), before any certificate.
    const old = await sClient(gw.port, ['-servername', 'localhost', '-tls1_1', '-cipher', 'DEFAULT:@SECLEVEL=0']);
    assert.notEqual(old.code, 0, old.out);
    assert.match(old.out, /alert protocol version/, old.out);
    assert.match(old.out, /SSL alert number 70\b/, old.out);
    assert.equal(subjectOf(old.out), null, 'no certificate sent');
    for (const [flag, want] of [['-tls1_2', 'TLSv1.2'], ['-tls1_3', 'TLSv1.3']]) {
      const r = await sClient(gw.port, ['-servername', 'localhost', flag]);
      assert.equal(r.code, 0, r.out);
      assert.match(r.out, new RegExp(`^New, ${want.replace('.', '\\.')}, Cipher is `, 'm'), r.out);
      assert.equal(subjectOf(r.out), 'CN = mcpgate localhost');
    }
  });

  test('a connection that never completes the handshake is closed (request_header, 2 s)', T, async () => {
    // The start of a ClientHello record, never finished.
    const partial = Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]);
    const [silent, stalled] = await Promise.all([
      rawHttp(gw.port, [], { timeoutMs: 8000 }),
      rawHttp(gw.port, partial, { timeoutMs: 8000 }),
    ]);
    for (const [what, r] of [['silent', silent], ['stalled hello', stalled]]) {
      assert.equal(r.closed, true, `${what} connection still open after 8 s`);
      assert.ok(r.closedAfterMs >= 1500 && r.closedAfterMs <= 6000, `${what} closed after ${r.closedAfterMs} ms`);
    }
    assert.ok(gw.alive());
  });

  test('the official SDK client (NODE_EXTRA_CA_CERTS=selfsigned.crt) lists and calls tools', T, async () => {
    const r = await sdkChild(url, { extraCa: crt });
    assert.equal(r.ok, true, JSON.stringify(r));
    assert.equal(r.server?.name, 'mcp-sqlite');
    assert.match(r.sessionId ?? '', /^[0-9a-f]{32}$/);
    for (const n of ['list_tables', 'describe_table', 'query', 'execute']) {
      assert.ok(r.tools.includes(n), `tool ${n} listed (got ${r.tools.join(', ')})`);
    }
    assert.deepEqual(JSON.parse(r.text).rows, [[42]], r.text);
    // Without the extra CA the same client must fail on the certificate.
    const bad = await sdkChild(url);
    assert.equal(bad.ok, false, JSON.stringify(bad));
    assert.match(`${bad.error} ${bad.cause}`, /SELF_SIGNED|self[- ]signed/i, JSON.stringify(bad));
  });

  test('restart with the same state_dir reuses the certificate', T, async () => {
    assert.ok(original, 'the first test recorded the generated certificate');
    await gw.stop();
    gw = await startTlsGateway({ name: 'tls-selfsigned-restart', routesFor, extra: { state_dir: stateDir } });
    url = `https://localhost:${gw.port}/sql`;
    assert.deepEqual(fs.readFileSync(crt), original.crt, 'selfsigned.crt unchanged');
    assert.deepEqual(fs.readFileSync(key), original.key, 'selfsigned.key unchanged');
    assert.equal(fs.statSync(key).mode & 0o777, 0o600);
    const p = await tlsProbe(gw.port, { servername: 'localhost', ca: original.crt });
    assert.equal(p.fingerprint256, original.fingerprint, 'same certificate presented after restart');
    const keep = path.join(tmpDir('mcpgate-e2e-tls-'), 'first.crt');
    fs.writeFileSync(keep, original.crt);
    await curlMcpSession(url, { cacert: keep });
  });

  test('gateway stops cleanly', T, async () => {
    await gw.stop();
  });
});

// ---------------------------------------------------------------------------

describe('tls.certificates chosen by SNI (min_version 1.3)', { skip: SKIP }, () => {
  let sqlite;
  let gw;
  let certs;

  before(async () => {
    certs = pki();
    sqlite = await startSqlite('http', { name: 'tls-sni-sqlite' });
    gw = await startTlsGateway({
      name: 'tls-sni',
      tlsConf: { certificates: [certs.a, certs.b], min_version: '1.3' },
      routesFor: (port) => [
        { name: 'a', from: `https://a.test:${port}/x`, to: sqlite.url },
        { name: 'b', from: `https://b.test:${port}/x`, to: sqlite.url },
      ],
    });
  });
  after(async () => {
    await gw?.stop().catch(() => {});
    await sqlite?.stop();
  });

  test('certificate follows SNI: b.test, a.test; none or unknown gives the first', T, async () => {
    const cases = [
      [['-servername', 'b.test'], 'CN = b.test'],
      [['-servername', 'a.test'], 'CN = a.test'],
      [['-noservername'], 'CN = a.test'],
      [['-servername', 'unknown.test'], 'CN = a.test'],
      [['-servername', 'B.TEST'], 'CN = b.test'],
    ];
    for (const [args, want] of cases) {
      const r = await sClient(gw.port, args);
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.out}`);
      assert.equal(subjectOf(r.out), want, `${args.join(' ')}:\n${r.out}`);
    }
    // And the chain verifies against the test CA for the name asked for.
    for (const name of ['a.test', 'b.test']) {
      const r = await sClient(gw.port, ['-servername', name, '-CAfile', certs.ca, '-verify_hostname', name, '-verify_return_error']);
      assert.equal(r.code, 0, r.out);
      assert.match(r.out, /Verify return code: 0 \(ok\)/, r.out);
    }
    const pa = await tlsProbe(gw.port, { servername: 'a.test', ca: fs.readFileSync(certs.ca) });
    assert.equal(pa.fingerprint256, fingerprintOfFile(certs.a.cert));
    const pb = await tlsProbe(gw.port, { servername: 'b.test', ca: fs.readFileSync(certs.ca) });
    assert.equal(pb.fingerprint256, fingerprintOfFile(certs.b.cert));
  });

  test('min_version "1.3": TLS 1.2 refused, TLS 1.3 accepted', T, async () => {
    const r12 = await sClient(gw.port, ['-servername', 'a.test', '-tls1_2']);
    assert.notEqual(r12.code, 0, r12.out);
    assert.match(r12.out, /alert protocol version/, r12.out);
    assert.equal(subjectOf(r12.out), null);
    const r13 = await sClient(gw.port, ['-servername', 'a.test', '-tls1_3']);
    assert.equal(r13.code, 0, r13.out);
    assert.match(r13.out, /^New, TLSv1\.3, Cipher is /m, r13.out);
  });

  test('routes on a.test and b.test work with curl --resolve --cacert', T, async () => {
    for (const host of ['a.test', 'b.test']) {
      const url = `https://${host}:${gw.port}/x`;
      const { init } = await curlMcpSession(url, { cacert: certs.ca, resolve: `${host}:${gw.port}:127.0.0.1` });
      assert.ok(init);
      const lines = await accessLogOf(gw, host[0], 3);
      assert.equal(lines.length, 3, `three requests logged for route ${host[0]}: ${JSON.stringify(gw.accessLog())}`);
      assert.deepEqual(lines.map((l) => l.status), [200, 202, 200], JSON.stringify(lines));
    }
    const v = await curlHttp(`https://b.test:${gw.port}/x`, { cacert: certs.ca, resolve: `b.test:${gw.port}:127.0.0.1`,
      verbose: true, headers: MCP_HEADERS, body: { jsonrpc: '2.0', id: 9, method: 'ping' } });
    assert.match(v.stderr, /subject: CN=b\.test/, v.stderr);
  });

  test('gateway stops cleanly', T, async () => {
    await gw.stop();
  });
});

// ---------------------------------------------------------------------------

/** HTTPS upstream: echoes what it received (headers, SNI, ALPN) as a JSON-RPC result. */
async function startEchoUpstream({ cert, key }) {
  const seen = { requests: [], servernames: [], tlsErrors: [] };
  const keyPem = fs.readFileSync(key);
  const certPem = fs.readFileSync(cert);
  const ctx = tls.createSecureContext({ key: keyPem, cert: certPem });
  const server = https.createServer({
    key: keyPem, cert: certPem, ALPNProtocols: ['http/1.1'],
    SNICallback: (name, cb) => { seen.servernames.push(name); cb(null, ctx); },
  }, (req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      const echo = { method: req.method, url: req.url, rawHeaders: req.rawHeaders,
        alpn: req.socket.alpnProtocol, servername: req.socket.servername ?? null };
      seen.requests.push(echo);
      let msg = null;
      try { msg = JSON.parse(body); } catch { /* not JSON */ }
      if (req.method !== 'POST' || !msg || msg.id === undefined) {
        res.writeHead(202, { 'content-length': 0 });
        res.end();
        return;
      }
      const out = JSON.stringify({ jsonrpc: '2.0', id: msg.id, result: { echo } });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(out) });
      res.end(out);
    });
  });
  server.on('tlsClientError', (e) => { seen.tlsErrors.push(e.code ?? e.message); });
  await within(5000, new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  }), 'HTTPS upstream listen');
  return {
    port: server.address().port,
    seen,
    close: () => within(5000, new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }), 'HTTPS upstream close'),
  };
}

/** Header values by lower-case name from rawHeaders: { name: [values...] }. */
function headerMap(raw) {
  const m = {};
  for (let i = 0; i < raw.length; i += 2) (m[raw[i].toLowerCase()] ??= []).push(raw[i + 1]);
  return m;
}

describe('HTTPS upstreams: verification, SNI, forwarded headers', { skip: SKIP }, () => {
  let up;
  let upA; // a second upstream whose certificate names only a.test
  let gw;
  let certs;
  let gwCa;
  const routeUrl = (name) => `https://localhost:${gw.port}/${name}`;

  before(async () => {
    certs = pki();
    up = await startEchoUpstream(certs.upstream);
    upA = await startEchoUpstream(certs.a);
    const to = `https://localhost:${up.port}/mcp`;
    const toA = `https://127.0.0.1:${upA.port}/mcp`;
    gw = await startTlsGateway({
      name: 'tls-upstream',
      routesFor: (port) => [
        { name: 'ca', from: `https://localhost:${port}/ca`, to, options: { tls_custom_ca_file: certs.ca } },
        { name: 'noca', from: `https://localhost:${port}/noca`, to },
        { name: 'ip', from: `https://localhost:${port}/ip`, to: `https://127.0.0.1:${up.port}/mcp`,
          options: { tls_custom_ca_file: certs.ca } },
        { name: 'skip', from: `https://localhost:${port}/skip`, to, options: { tls_skip_verify: true } },
        { name: 'wrongname', from: `https://localhost:${port}/wrongname`, to,
          options: { tls_custom_ca_file: certs.ca, tls_server_name: 'wrong.example' } },
        { name: 'ipnosan', from: `https://localhost:${port}/ipnosan`, to: toA, options: { tls_custom_ca_file: certs.ca } },
        { name: 'servername', from: `https://localhost:${port}/servername`, to: toA,
          options: { tls_custom_ca_file: certs.ca, tls_server_name: 'a.test' } },
      ],
    });
    gwCa = fs.readFileSync(path.join(gw.tmp, 'state', 'selfsigned.crt'));
  });
  after(async () => {
    await gw?.stop().catch(() => {});
    await up?.close();
    await upA?.close();
  });

  const casesFor = (name) => up.seen.requests.filter((r) => headerMap(r.rawHeaders)['x-e2e-case']?.[0] === name);

  test('tls_custom_ca_file: 200, SNI and ALPN http/1.1 upstream, headers stripped and set', T, async () => {
    const r = await httpsRequest(routeUrl('ca'), {
      ca: gwCa,
      headers: {
        ...MCP_HEADERS,
        'x-e2e-case': 'ca',
        authorization: 'Bearer caller-secret-token',
        cookie: '_mcpgate_session=s3cr3t; keep=1; _mcpgate=x; other=two',
        'x-forwarded-for': '203.0.113.9',
        'x-forwarded-proto': 'http',
        'x-forwarded-host': 'evil.example',
        forwarded: 'for=203.0.113.9;proto=http',
      },
      body: { jsonrpc: '2.0', id: 'req-ca-1', method: 'tools/list' },
    });
    assert.equal(r.status, 200, r.text);
    const msg = r.messages[0];
    assert.equal(msg?.id, 'req-ca-1', r.text);
    const echo = msg.result.echo;
    assert.equal(echo.method, 'POST');
    assert.equal(echo.url, '/mcp');
    assert.equal(echo.alpn, 'http/1.1', 'the gateway offered ALPN http/1.1 upstream');
    assert.equal(echo.servername, 'localhost', 'SNI = host of `to`');
    const h = headerMap(echo.rawHeaders);
    assert.deepEqual(h.host, [`localhost:${up.port}`]);
    assert.equal(h.authorization, undefined, `Authorization forwarded: ${JSON.stringify(h.authorization)}`);
    assert.deepEqual(h.cookie, ['keep=1; other=two'], `cookies forwarded: ${JSON.stringify(h.cookie)}`);
    assert.deepEqual(h['x-forwarded-for'], ['127.0.0.1']);
    assert.deepEqual(h['x-forwarded-proto'], ['https']);
    assert.deepEqual(h['x-forwarded-host'], [`localhost:${gw.port}`]);
    assert.equal(h.forwarded, undefined);
    assert.deepEqual(h['x-e2e-case'], ['ca']);
  });

  test('without tls_custom_ca_file (system store): 502, JSON-RPC error with the request id', T, async () => {
    for (const id of [7, 'req-noca-1']) {
      const r = await httpsRequest(routeUrl('noca'), {
        ca: gwCa, headers: { ...MCP_HEADERS, 'x-e2e-case': 'noca' },
        body: { jsonrpc: '2.0', id, method: 'tools/list' },
      });
      assert.equal(r.status, 502, r.text);
      assert.match(r.headers['content-type'] ?? '', /^application\/json/);
      assert.deepEqual(JSON.parse(r.text),
        { jsonrpc: '2.0', id, error: { code: -32000, message: 'upstream TLS handshake failed' } });
    }
    assert.equal(casesFor('noca').length, 0, 'no request reached the upstream');
    const log = await accessLogOf(gw, 'noca', 2);
    assert.equal(log.length, 2, JSON.stringify(log));
    assert.ok(log.every((l) => l.status === 502 && l.error === 'upstream TLS handshake failed'), JSON.stringify(log));
  });

  test('tls_skip_verify: true: 200', T, async () => {
    const r = await httpsRequest(routeUrl('skip'), {
      ca: gwCa, headers: { ...MCP_HEADERS, 'x-e2e-case': 'skip' },
      body: { jsonrpc: '2.0', id: 31, method: 'tools/list' },
    });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.messages[0]?.id, 31);
    assert.equal(r.messages[0].result.echo.servername, 'localhost');
    assert.equal(casesFor('skip').length, 1);
  });

  test('tls_server_name: wrong.example with the CA: 502 (name mismatch), SNI wrong.example', T, async () => {
    const r = await httpsRequest(routeUrl('wrongname'), {
      ca: gwCa, headers: { ...MCP_HEADERS, 'x-e2e-case': 'wrongname' },
      body: { jsonrpc: '2.0', id: 'req-wrong-1', method: 'tools/list' },
    });
    assert.equal(r.status, 502, r.text);
    assert.deepEqual(JSON.parse(r.text),
      { jsonrpc: '2.0', id: 'req-wrong-1', error: { code: -32000, message: 'upstream TLS handshake failed' } });
    assert.equal(casesFor('wrongname').length, 0, 'no request reached the upstream');
    assert.ok(up.seen.servernames.includes('wrong.example'), `SNI seen upstream: ${JSON.stringify(up.seen.servernames)}`);
  });

  test('IP-literal upstream (to: https://127.0.0.1:PORT) verified against the IP SAN: 200', T, async () => {
    const r = await httpsRequest(routeUrl('ip'), {
      ca: gwCa, headers: { ...MCP_HEADERS, 'x-e2e-case': 'ip' },
      body: { jsonrpc: '2.0', id: 51, method: 'tools/list' },
    });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.messages[0]?.id, 51);
    assert.deepEqual(headerMap(r.messages[0].result.echo.rawHeaders).host, [`127.0.0.1:${up.port}`]);
  });

  test('IP-literal upstream whose certificate has no such IP SAN: 502', T, async () => {
    const r = await httpsRequest(routeUrl('ipnosan'), {
      ca: gwCa, headers: { ...MCP_HEADERS, 'x-e2e-case': 'ipnosan' },
      body: { jsonrpc: '2.0', id: 'req-ipnosan', method: 'tools/list' },
    });
    assert.equal(r.status, 502, r.text);
    assert.deepEqual(JSON.parse(r.text),
      { jsonrpc: '2.0', id: 'req-ipnosan', error: { code: -32000, message: 'upstream TLS handshake failed' } });
    assert.equal(upA.seen.requests.length, 0, 'no request reached the upstream');
  });

  test('tls_server_name: a.test for that upstream: 200, SNI a.test, Host still the host of `to`', T, async () => {
    const r = await httpsRequest(routeUrl('servername'), {
      ca: gwCa, headers: { ...MCP_HEADERS, 'x-e2e-case': 'servername' },
      body: { jsonrpc: '2.0', id: 61, method: 'tools/list' },
    });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.messages[0]?.id, 61);
    const echo = r.messages[0].result.echo;
    assert.equal(echo.servername, 'a.test');
    assert.deepEqual(headerMap(echo.rawHeaders).host, [`127.0.0.1:${upA.port}`]);
  });

  // RFC 6066 §3: "Literal IPv4 and IPv6 addresses are not permitted in HostName". The
  // gateway sends the IP of `to` as SNI (tls_server_name defaults to to.host).
  test('IP-literal upstream: no IP address sent as SNI (RFC 6066 §3)', T, async () => {
    const r = await httpsRequest(routeUrl('ip'), {
      ca: gwCa, headers: { ...MCP_HEADERS, 'x-e2e-case': 'ip' },
      body: { jsonrpc: '2.0', id: 52, method: 'tools/list' },
    });
    assert.equal(r.status, 200, r.text);
    const sni = r.messages[0].result.echo.servername;
    assert.ok(!sni, `SNI sent to an IP-literal upstream: ${JSON.stringify(sni)}`);
  });

  test('the verified route still works after the failures (no poisoned pool)', T, async () => {
    const r = await httpsRequest(routeUrl('ca'), {
      ca: gwCa, headers: { ...MCP_HEADERS, 'x-e2e-case': 'ca' },
      body: { jsonrpc: '2.0', id: 41, method: 'tools/list' },
    });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.messages[0]?.id, 41);
  });

  test('gateway stops cleanly', T, async () => {
    await gw.stop();
  });
});
