// The official MCP conformance suite's authorization-server scenarios
// (@modelcontextprotocol/conformance 0.2.0-alpha.12, installed as the npm alias
// `conformance-next` beside 0.1.16, which has no such command), run against the
// gateway's authorization server:
//
//   conformance authorization --url ISSUER --client-id ID --resource ROUTE -p PORT -o DIR
//
// Scenarios: authorization-server-metadata-endpoint (RFC 8414 document: status, JSON,
// issuer equal to the URL, code in response_types_supported, S256; a WARNING unless
// client_id_metadata_document_supported is true) and authorization-code-grant (the
// suite prints an authorization URL, waits for the browser at
// http://127.0.0.1:PORT/callback, then redeems the code with PKCE and checks the token
// response). The "browser" here is lib/browser.mjs signing in with a built-in account
// made by `mcpgate users add`; the client is pre-registered in the config (public, with
// that redirect URI). Every FAILURE fails the test; WARNINGs are reported as diagnostics.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { DIRECT, NODE22, NODE_MODULES, artifactDir, freePort, waitExit } from './lib/harness.mjs';
import { Browser, signIn } from './lib/browser.mjs';
import { addUser, startIdentityGateway } from './lib/identity.mjs';

const CLI = path.join(NODE_MODULES, 'conformance-next/dist/index.js');
const RUN_TIMEOUT_MS = 60_000;
const USER = { email: 'conf@example.com', password: 'conformance-password' };
const stripAnsi = (s) => s.replace(/\x1b\[[0-9;]*m/g, '');

function unavailable() {
  if (DIRECT) return 'E2E_DIRECT=1: needs the gateway';
  if (!fs.existsSync(CLI)) return `${path.relative(NODE_MODULES, CLI)} is not installed (npm ci in tests/e2e)`;
  if (!fs.existsSync(NODE22)) return `Node 22 not found at ${NODE22}`;
  return null;
}

function* walkFiles(dir) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) yield* walkFiles(p);
    else yield p;
  }
}

describe('conformance authorization (0.2.0-alpha.12) against the gateway', { skip: unavailable() ?? false }, () => {
  let s;
  let cbPort;

  before(async () => {
    cbPort = await freePort();
    s = await startIdentityGateway({
      name: 'conformance-as',
      oauth: { clients: [{ client_id: 'conformance', name: 'MCP conformance', redirect_uris: [`http://127.0.0.1:${cbPort}/callback`] }] },
    });
    await addUser(s.config, USER.email, USER.password);
  });
  after(async () => { await s?.stop(); });

  test('every authorization-server scenario passes', { timeout: RUN_TIMEOUT_MS + 30_000 }, async (t) => {
    const dir = artifactDir('conformance-authorization');
    const results = path.join(dir, 'results');
    fs.mkdirSync(results, { recursive: true });
    const proc = spawn(NODE22, [CLI, 'authorization', '--url', s.issuer, '--client-id', 'conformance',
      '--resource', s.url('sql'), '-p', String(cbPort), '-o', results], {
      cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' },
    });
    let out = '';
    let browserRun = null;
    const authorizePrefix = `${s.issuer}/_mcpgate/oauth/authorize?`;
    const onData = (d) => {
      out += d;
      const line = stripAnsi(out).split('\n').find((l) => l.startsWith(authorizePrefix));
      if (line && !browserRun) {
        // The person: sign in and approve; the browser then loads the suite's callback.
        browserRun = (async () => {
          const cb = `http://127.0.0.1:${cbPort}/callback`;
          const page = await signIn(new Browser(), line.trim(), { stopAt: cb, email: USER.email, password: USER.password });
          const res = await fetch(page.callback.url, { signal: AbortSignal.timeout(10_000) });
          await res.text();
          return { status: res.status, url: page.callback.url };
        })().catch((e) => ({ error: e.message }));
      }
    };
    proc.stdout.setEncoding('utf8').on('data', onData);
    proc.stderr.setEncoding('utf8').on('data', (d) => { out += d; });
    const finished = await waitExit(proc, RUN_TIMEOUT_MS);
    if (!finished) { proc.kill('SIGKILL'); await waitExit(proc, 5000); }
    fs.writeFileSync(path.join(dir, 'output.txt'), out);
    assert.ok(finished, `the suite did not finish within ${RUN_TIMEOUT_MS} ms; output in ${dir}`);
    const ua = await browserRun;
    assert.ok(ua, `the suite printed no authorization URL:\n${stripAnsi(out).slice(-2000)}`);
    assert.equal(ua.error, undefined, `signing in for the suite: ${ua.error}`);
    assert.equal(ua.status, 200);

    const text = stripAnsi(out);
    const summary = text.slice(text.lastIndexOf('=== SUMMARY ==='));
    const scenarios = Object.fromEntries([...summary.matchAll(/^[✓✗] (\S+): (\d+) passed, (\d+) failed$/gmu)]
      .map((m) => [m[1], { passed: Number(m[2]), failed: Number(m[3]) }]));
    assert.deepEqual(Object.keys(scenarios).sort(), ['authorization-code-grant', 'authorization-server-metadata-endpoint'],
      `scenarios in the summary:\n${summary}`);
    const checks = [...walkFiles(results)].filter((f) => path.basename(f) === 'checks.json')
      .flatMap((f) => JSON.parse(fs.readFileSync(f, 'utf8')));
    for (const c of checks) t.diagnostic(`${c.status} ${c.id}${c.errorMessage ? `: ${c.errorMessage}` : ''}`);
    const failures = checks.filter((c) => c.status === 'FAILURE').map((c) => `${c.id}: ${c.errorMessage ?? c.description}`);
    assert.deepEqual(failures, [], `failed checks (output in ${dir})`);
    assert.deepEqual(checks.filter((c) => c.status === 'SKIPPED').map((c) => c.id), []);
    for (const [name, r] of Object.entries(scenarios)) {
      assert.equal(r.failed, 0, name);
      assert.ok(r.passed > 0, `${name} passed no check`);
    }
    assert.equal(proc.exitCode, 0);
  });
});
