// Gateway lifecycle and hosted-process faults, with the real binary:
//  - SIGHUP reload under load loses no in-flight request and keeps open streams;
//    a bad file keeps the running configuration;
//  - stdio children that exit, flood stderr, cannot start, exceed the cap, or idle out.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import {
  startGateway, startSqlite, rawInitialize, postMcp, connectClient, E2E_DIR, sleep, within,
  MCPGATE_BIN, tmpDir, rawHttp, freePort,
} from './lib/harness.mjs';
import net from 'node:net';

const T = { timeout: 60000 };
const FAULTY = path.join(E2E_DIR, 'fixtures/stdio-faulty.mjs');
const faulty = (env = {}) => ({ command: process.execPath, args: [FAULTY], env });

async function metric(gw, name) {
  const res = await fetch(gw.metricsUrl, { signal: AbortSignal.timeout(3000) });
  const text = await res.text();
  const line = text.split('\n').find((l) => l.startsWith(name + ' ') || l.startsWith(name + '{'));
  return line ? Number(line.split(' ').pop()) : NaN;
}

const call = (id, name, args = {}) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } });

describe('reload under load', () => {
  let up; let gw;
  before(async () => {
    up = await startSqlite('http', { name: 'lifecycle-sqlite' });
    gw = await startGateway({ name: 'lifecycle-reload', routes: [{ name: 'sql', to: up.url }] });
  });
  after(async () => { await gw?.stop(); await up?.stop(); });

  test('SIGHUP while 8 clients call tools: every request answered, streams survive', T, async () => {
    const url = gw.routeUrl('sql');
    const { sessionId, protocolVersion } = await rawInitialize(url);
    // A streaming call that spans all the reloads.
    const client = await connectClient(url);
    let progress = 0;
    const streaming = client.callTool({ name: 'slow_count', arguments: { steps: 6, interval_ms: 500 } },
      undefined, { onprogress: () => { progress++; }, timeout: 20000 });
    let ok = 0; let failed = 0; const errors = [];
    let stop = false;
    const worker = async (w) => {
      for (let i = 0; !stop && i < 10000; i++) {
        try {
          const r = await postMcp(url, call(`${w}-${i}`, 'query', { sql: 'SELECT 1 AS one' }), { sessionId, protocolVersion });
          if (r.status === 200 && r.messages.some((m) => m.result)) ok++;
          else { failed++; errors.push(`${r.status} ${r.text.slice(0, 120)}`); }
        } catch (e) { failed++; errors.push(String(e)); }
      }
    };
    const workers = Array.from({ length: 8 }, (_, w) => worker(w));
    for (let k = 0; k < 6; k++) {
      await sleep(400);
      // Every other reload also turns the workers' yielding off and back on.
      const extra = k % 2 ? {} : { limits: { max_body_bytes: 1048576 + k }, worker_yield: false };
      gw.updateConfig({ extra });
      await gw.reload();
    }
    stop = true;
    await within(20000, Promise.all(workers), 'load workers');
    const res = await within(20000, streaming, 'streaming call');
    await client.close();
    assert.equal(failed, 0, `failed requests during reloads: ${errors.slice(0, 5).join(' | ')}`);
    assert.ok(ok > 50, `only ${ok} requests completed`);
    assert.match(res.content[0].text, /counted 6/);
    assert.equal(progress, 6, 'every progress notification arrived across the reloads');
    const reloads = gw.logs().filter((l) => /configuration reloaded/.test(l.msg ?? '')).length;
    assert.equal(reloads, 6);
  });

  test('a broken file on SIGHUP keeps the running configuration', T, async () => {
    const fs = await import('node:fs');
    const good = fs.readFileSync(gw.configPath, 'utf8');
    fs.writeFileSync(gw.configPath, good + '\nroutes: [this is: not valid\n');
    await gw.reload();
    const logged = gw.logs().some((l) => /reload failed, keeping the running configuration/.test(l.msg ?? ''));
    assert.ok(logged, 'the failed reload is logged with its reason');
    const { sessionId } = await rawInitialize(gw.routeUrl('sql'));
    assert.ok(sessionId, 'still serving with the old configuration');
    fs.writeFileSync(gw.configPath, good);
    assert.equal(await metric(gw, 'mcpgate_reloads_total{result="failed"}'), 1);
  });
});

describe('hosted stdio faults', () => {
  let gw;
  before(async () => {
    gw = await startGateway({
      name: 'lifecycle-stdio',
      routes: [
        { name: 'faulty', stdio: faulty({ FLOOD_BYTES: String(8 << 20) }) },
        { name: 'missing', stdio: { command: '/nonexistent/mcp-server', args: [] } },
      ],
      extra: { limits: { max_stdio_children: 3 }, timeouts: { session_idle: '1500ms', stdio_kill_grace: '500ms', first_byte: '20s' } },
    });
  });
  after(async () => { await gw?.stop(); });

  test('a child that exits mid-request: the request gets a JSON-RPC error, the next session works', T, async () => {
    const url = gw.routeUrl('faulty');
    const { sessionId, protocolVersion } = await rawInitialize(url);
    const r = await postMcp(url, call(7, 'crash'), { sessionId, protocolVersion });
    assert.equal(r.status, 200);
    const m = r.messages.find((x) => x.id === 7);
    assert.ok(m?.error, `an error for id 7: ${r.text}`);
    assert.equal(m.error.code, -32000);
    assert.match(m.error.message, /exited with status 3/);
    const again = await postMcp(url, call(8, 'ok'), { sessionId, protocolVersion });
    assert.equal(again.status, 404, 'the dead session is gone');
    const fresh = await rawInitialize(url);
    const ok = await postMcp(url, call(9, 'ok'), { sessionId: fresh.sessionId, protocolVersion });
    assert.equal(ok.messages.find((x) => x.id === 9)?.result?.content?.[0]?.text, 'fine');
  });

  test('a child flooding stderr: answered, gateway log rate-limited, gateway responsive', T, async () => {
    const url = gw.routeUrl('faulty');
    const { sessionId, protocolVersion } = await rawInitialize(url);
    const before = gw.logs().length;
    const r = await postMcp(url, call(1, 'flood'), { sessionId, protocolVersion, timeoutMs: 30000 });
    assert.equal(r.messages.find((x) => x.id === 1)?.result?.content?.[0]?.text, 'flooded');
    await sleep(1200);
    const next = await postMcp(url, call(2, 'ok'), { sessionId, protocolVersion });
    assert.equal(next.messages.find((x) => x.id === 2)?.result?.content?.[0]?.text, 'fine');
    const stderrLines = gw.logs().slice(before).filter((l) => /stderr:/.test(l.msg ?? '')).length;
    assert.ok(stderrLines <= 200, `8 MiB of stderr became ${stderrLines} log lines (rate limit 50/s)`);
    assert.ok(gw.logs().some((l) => /stderr lines not logged \(rate limit\)/.test(l.msg ?? '')), 'dropped lines are counted');
  });

  test('a command that cannot start: 502 with a JSON-RPC error naming it', T, async () => {
    const r = await postMcp(gw.routeUrl('missing'), {
      jsonrpc: '2.0', id: 1, method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } },
    });
    assert.equal(r.status, 502);
    const body = JSON.parse(r.text);
    assert.equal(body.id, 1);
    assert.match(body.error.message, /cannot start \/nonexistent\/mcp-server/);
  });

  test('the cap on concurrent children: 503, and idle sessions end and free their child', T, async () => {
    const url = gw.routeUrl('faulty');
    // Earlier tests' sessions idle out after 1.5 s: wait for a clean slate.
    await sleep(2500);
    assert.equal(await metric(gw, 'mcpgate_stdio_children'), 0, 'idle sessions ended and their children exited');
    const sessions = [];
    for (let i = 0; i < 3; i++) sessions.push(await rawInitialize(url));
    assert.equal(await metric(gw, 'mcpgate_stdio_children'), 3);
    const r = await postMcp(url, {
      jsonrpc: '2.0', id: 5, method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } },
    });
    assert.equal(r.status, 503);
    assert.match(JSON.parse(r.text).error.message, /max_stdio_children/);
    // DELETE frees a slot at once.
    const del = await fetch(url, { method: 'DELETE', headers: { 'mcp-session-id': sessions[0].sessionId } });
    assert.equal(del.status, 200);
    await sleep(800);
    const again = await rawInitialize(url);
    assert.ok(again.sessionId);
    await sleep(2500);
    assert.equal(await metric(gw, 'mcpgate_stdio_children'), 0);
    const gone = await postMcp(url, call(1, 'ok'), { sessionId: again.sessionId, protocolVersion: again.protocolVersion });
    assert.equal(gone.status, 404, 'an idle session is ended after timeouts.session_idle');
  });

  test('a request pending when the client disconnects does not leak or block the session', T, async () => {
    const url = gw.routeUrl('faulty');
    const { sessionId, protocolVersion } = await rawInitialize(url);
    const ac = new AbortController();
    const pending = fetch(url, {
      method: 'POST', signal: ac.signal,
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sessionId },
      body: JSON.stringify(call(1, 'hang')),
    }).catch(() => null);
    await sleep(300);
    ac.abort();
    await pending;
    const r = await postMcp(url, call(2, 'ok'), { sessionId, protocolVersion });
    assert.equal(r.messages.find((x) => x.id === 2)?.result?.content?.[0]?.text, 'fine');
  });
});

describe('shared stdio child (stdio.shared: true)', () => {
  let gw;
  before(async () => {
    gw = await startGateway({
      name: 'lifecycle-shared',
      routes: [{ name: 'shared', stdio: faulty(), options: { stdio: { shared: true } } }],
      extra: { timeouts: { session_idle: '30s', stdio_kill_grace: '500ms' } },
    });
  });
  after(async () => { await gw?.stop(); });

  test('two sessions share one process; equal JSON-RPC ids do not cross', T, async () => {
    const url = gw.routeUrl('shared');
    const a = await rawInitialize(url);
    const b = await rawInitialize(url);
    assert.notEqual(a.sessionId, b.sessionId, 'each caller gets its own session');
    assert.equal(b.result.serverInfo.name, 'stdio-faulty', 'the second initialize is answered from the cached result');
    assert.equal(await metric(gw, 'mcpgate_stdio_children'), 1, 'one child for both sessions');
    // The same id from both sessions at once: each answer must reach its own caller.
    const [ra, rb] = await Promise.all([
      postMcp(url, call(42, 'ok'), { sessionId: a.sessionId, protocolVersion: a.protocolVersion }),
      postMcp(url, call(42, 'flood'), { sessionId: b.sessionId, protocolVersion: b.protocolVersion, timeoutMs: 30000 }),
    ]);
    assert.equal(ra.messages.find((m) => m.id === 42)?.result?.content?.[0]?.text, 'fine');
    assert.equal(rb.messages.find((m) => m.id === 42)?.result?.content?.[0]?.text, 'flooded');
    const del = await fetch(url, { method: 'DELETE', headers: { 'mcp-session-id': a.sessionId } });
    assert.equal(del.status, 200);
    const still = await postMcp(url, call(7, 'ok'), { sessionId: b.sessionId, protocolVersion: b.protocolVersion });
    assert.equal(still.messages.find((m) => m.id === 7)?.result?.content?.[0]?.text, 'fine',
      'ending one session keeps the shared child for the others');
  });

  test('the shared child dying ends every session with a JSON-RPC error', T, async () => {
    const url = gw.routeUrl('shared');
    const a = await rawInitialize(url);
    const b = await rawInitialize(url);
    const r = await postMcp(url, call(9, 'crash'), { sessionId: a.sessionId, protocolVersion: a.protocolVersion });
    assert.match(r.messages.find((m) => m.id === 9)?.error?.message ?? '', /exited with status 3/);
    const gone = await postMcp(url, call(10, 'ok'), { sessionId: b.sessionId, protocolVersion: b.protocolVersion });
    assert.equal(gone.status, 404, 'the other session ended with the child');
    const fresh = await rawInitialize(url);
    const ok = await postMcp(url, call(11, 'ok'), { sessionId: fresh.sessionId, protocolVersion: fresh.protocolVersion });
    assert.equal(ok.messages.find((m) => m.id === 11)?.result?.content?.[0]?.text, 'fine', 'a new child starts');
  });
});

describe('mcpgate check', () => {
  test('a valid file: exit 0 and a summary; a broken one: exit 1 with FILE:LINE:COL', T, () => {
    const dir = tmpDir('mcpgate-check-');
    const good = path.join(dir, 'good.yaml');
    const bad = path.join(dir, 'bad.yaml');
    fs.writeFileSync(good, 'address: 127.0.0.1:8443\ninsecure_server: true\nroutes:\n  - name: a\n    from: http://127.0.0.1:8443/a\n    to: http://127.0.0.1:9000/mcp\n');
    fs.writeFileSync(bad, 'address: 127.0.0.1:8443\ninsecure_server: true\nroutes:\n  - name: a\n    from: http://127.0.0.1:8443/a\n    to: ftp://127.0.0.1:9000/mcp\n    timeout: soon\n');
    const ok = spawnSync(MCPGATE_BIN, ['check', '-c', good], { encoding: 'utf8', timeout: 10000 });
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /good\.yaml: ok \(1 route\)/);
    const ko = spawnSync(MCPGATE_BIN, ['check', '-c', bad], { encoding: 'utf8', timeout: 10000 });
    assert.equal(ko.status, 1);
    const lines = ko.stderr.trim().split('\n');
    assert.ok(lines.some((l) => l.startsWith(`${bad}:6:9: `)), `the bad 'to' is located: ${ko.stderr}`);
    assert.ok(lines.some((l) => l.startsWith(`${bad}:7:14: `)), `the bad duration is located: ${ko.stderr}`);
    const usage = spawnSync(MCPGATE_BIN, ['check'], { encoding: 'utf8', timeout: 10000 });
    assert.equal(usage.status, 2, 'a missing -c is a usage error');
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

describe('limits.max_connections', () => {
  let up; let gw;
  before(async () => {
    up = await startSqlite('http', { name: 'lifecycle-maxconn-sqlite' });
    gw = await startGateway({
      name: 'lifecycle-maxconn',
      routes: [{ name: 'sql', to: up.url }],
      extra: { limits: { max_connections: 3 }, timeouts: { request_header: '5s' } },
    });
  });
  after(async () => { await gw?.stop(); await up?.stop(); });

  test('over the cap: 503 with a JSON-RPC error and the connection closed; under it again: served', T, async () => {
    const held = [];
    for (let i = 0; i < 3; i++) {
      const sock = net.connect(gw.port, '127.0.0.1');
      await new Promise((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject); });
      held.push(sock);
    }
    await sleep(200); // both workers have accepted and counted them
    const over = await rawHttp(gw.port, `GET /sql HTTP/1.1\r\nHost: 127.0.0.1:${gw.port}\r\n\r\n`, { timeoutMs: 3000 });
    assert.equal(over.status, 503, over.raw);
    assert.ok(over.closed, 'the connection over the cap is closed');
    assert.match(over.body, /too many connections/);
    for (const sock of held) sock.destroy();
    await sleep(300);
    const { sessionId } = await rawInitialize(gw.routeUrl('sql'));
    assert.ok(sessionId, 'served again once connections are below the cap');
    assert.equal(await metric(gw, 'mcpgate_open_connections') <= 2, true);
  });
});

async function workerCounts(gw) {
  const res = await fetch(gw.metricsUrl, { signal: AbortSignal.timeout(3000) });
  const text = await res.text();
  const per = (name) => [...text.matchAll(new RegExp(`^${name}\\{worker="(\\d+)"\\} (\\d+)$`, 'gm'))]
    .map((m) => [Number(m[1]), Number(m[2])]).sort((a, b) => a[0] - b[0]).map((x) => x[1]);
  return { open: per('mcpgate_worker_connections'), handed: per('mcpgate_worker_handoffs_total') };
}

async function connectRaw(port) {
  const sock = net.connect(port, '127.0.0.1');
  sock.on('error', () => {});
  await new Promise((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject); });
  return sock;
}

/** Sends one request on an open socket and resolves with the status line of its answer. */
function ask(sock, port, timeoutMs = 5000) {
  return new Promise((resolve, reject) => {
    let got = '';
    const timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms: ${JSON.stringify(got)}`)), timeoutMs);
    sock.on('data', (d) => {
      got += d.toString('latin1');
      const line = got.split('\r\n')[0];
      if (got.includes('\r\n')) { clearTimeout(timer); resolve(line); }
    });
    sock.write(`GET /nothing-here HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
  });
}

describe('connections spread over workers', () => {
  let gw;
  const held = [];
  before(async () => {
    gw = await startGateway({ name: 'lifecycle-balance', workers: 4, routes: [{ name: 'sql', to: 'http://127.0.0.1:9/mcp' }] });
  });
  after(async () => { for (const s of held) s.destroy(); await gw?.stop(); });

  // Opens n connections one at a time, each counted by the gateway before the next.
  async function openCounted(n) {
    for (let i = 0; i < n; i++) {
      held.push(await connectRaw(gw.port));
      const want = held.filter((s) => !s.destroyed).length;
      const deadline = Date.now() + 3000;
      for (;;) {
        const { open } = await workerCounts(gw);
        const total = open.reduce((a, b) => a + b, 0);
        if (total === want) break;
        assert.ok(Date.now() < deadline, `the gateway counts ${total} connections, ${want} are open`);
        await sleep(5);
      }
    }
  }

  test('open connections per worker differ by at most one, and every one is served', T, async () => {
    await openCounted(42);
    let { open, handed } = await workerCounts(gw);
    assert.equal(open.length, 4, 'one gauge per worker');
    assert.ok(Math.max(...open) - Math.min(...open) <= 1, `42 connections over 4 workers: ${open}`);
    // The kernel's hash alone would not do that: some were passed between workers.
    assert.ok(handed.reduce((a, b) => a + b, 0) > 0, `handoffs: ${handed}`);
    const lines = await within(20000, Promise.all(held.map((s) => ask(s, gw.port))), 'answers');
    for (const l of lines) assert.match(l, /^HTTP\/1\.1 404 /, 'a connection passed to another worker is served there');

    // Close half, whichever workers they are on; new ones fill the emptier workers.
    for (const s of held.splice(0, 21)) s.destroy();
    const deadline = Date.now() + 3000;
    while ((await workerCounts(gw)).open.reduce((a, b) => a + b, 0) !== 21) {
      assert.ok(Date.now() < deadline, 'closed connections are no longer counted');
      await sleep(10);
    }
    await openCounted(21);
    ({ open } = await workerCounts(gw));
    assert.ok(Math.max(...open) - Math.min(...open) <= 1, `after closing and opening 21: ${open}`);
    assert.equal(await metric(gw, 'mcpgate_open_connections'), 42);
  });
});

describe('worker_yield', () => {
  let gw;
  before(async () => {
    gw = await startGateway({ name: 'lifecycle-yield', workers: 3, routes: [{ name: 'sql', to: 'http://127.0.0.1:9/mcp' }] });
  });
  after(async () => { await gw?.stop(); });

  // Threads of the gateway whose scheduler slice is the 0.1 ms a yielding worker asks for.
  const shortSliced = () => fs.readdirSync(`/proc/${gw.proc.pid}/task`).filter((tid) => {
    const m = /^se\.slice\s*:\s*(\d+)/m.exec(fs.readFileSync(`/proc/${gw.proc.pid}/task/${tid}/sched`, 'utf8'));
    return m && Number(m[1]) === 100000;
  }).length;

  test('workers ask for a 0.1 ms slice; a reload with worker_yield: false gives it back', T, async (t) => {
    const sched = `/proc/${gw.proc.pid}/task/${gw.proc.pid}/sched`;
    if (!fs.existsSync(sched) || !/^se\.slice/m.test(fs.readFileSync(sched, 'utf8'))) {
      t.skip('this kernel shows no per-task slice in /proc (needs CONFIG_SCHED_DEBUG and Linux 6.12+)');
      return;
    }
    const until = async (want, what) => {
      const deadline = Date.now() + 3000;
      while (shortSliced() !== want) {
        assert.ok(Date.now() < deadline, `${what}: ${shortSliced()} threads with a 0.1 ms slice, want ${want}`);
        await sleep(20);
      }
    };
    // Each of the 3 workers, and no other thread (libuv's threadpool was started before them).
    await until(3, 'at start');
    gw.updateConfig({ extra: { worker_yield: false } });
    await gw.reload();
    await until(0, 'after worker_yield: false');
    gw.updateConfig({ extra: {} });
    await gw.reload();
    await until(3, 'after worker_yield back on');
  });
});

describe('out of file descriptors', () => {
  let gw;
  const socks = [];
  before(async () => {
    gw = await startGateway({ name: 'lifecycle-emfile', routes: [{ name: 'sql', to: 'http://127.0.0.1:9/mcp' }] });
  });
  after(async () => { for (const s of socks) s.destroy(); await gw?.stop(); });

  const cpuTicks = (pid) => {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return Number(f[11]) + Number(f[12]); // utime + stime, fields 14 and 15
  };

  test('accepting pauses instead of spinning, logs once, and resumes when descriptors free up', T, async () => {
    const pid = gw.proc.pid;
    const inUse = fs.readdirSync(`/proc/${pid}/fd`).length;
    const limit = inUse + 4;
    const soft = /^Max open files\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/limits`, 'utf8'))[1];
    // The soft limit only: raising it back needs no privilege.
    const r = spawnSync('prlimit', [`--pid=${pid}`, `--nofile=${limit}:`], { encoding: 'utf8' });
    assert.equal(r.status, 0, `prlimit: ${r.stderr}`);
    // The first few are accepted; the rest wait in the backlog (the kernel completes the handshake).
    for (let i = 0; i < 12; i++) socks.push(await connectRaw(gw.port));
    await sleep(300);
    const t0 = cpuTicks(pid);
    const w0 = Date.now();
    await sleep(1500);
    const busy = (cpuTicks(pid) - t0) / 100 / ((Date.now() - w0) / 1000);
    assert.ok(busy < 0.3, `the gateway used ${(busy * 100).toFixed(0)}% of a core while out of descriptors`);
    const warned = gw.logs().filter((l) => /accept: .*not accepting for 100 ms/.test(l.msg ?? ''));
    assert.ok(warned.length >= 1, 'EMFILE is logged');
    assert.ok(warned.length <= 2, `logged ${warned.length} times in 1.5 s (at most once per worker per 10 s)`);
    assert.ok(warned.some((l) => /too many open files/i.test(l.msg)), warned.map((l) => l.msg).join(' | '));
    // (No /metrics request here: the metrics listener is out of descriptors too.)
    // Give the descriptors back: every waiting connection is accepted and answered.
    const lim = spawnSync('prlimit', [`--pid=${pid}`, `--nofile=${soft}:`], { encoding: 'utf8' });
    assert.equal(lim.status, 0, `prlimit: ${lim.stderr}`);
    const lines = await within(10000, Promise.all(socks.map((s) => ask(s, gw.port))), 'answers after the pause');
    for (const l of lines) assert.match(l, /^HTTP\/1\.1 404 /);
    assert.equal(await metric(gw, 'mcpgate_open_connections'), 12);
  });
});

describe('upstream failures become JSON-RPC errors with the request id', () => {
  let gw; let silent; let refusedPort;
  const held = [];
  before(async () => {
    refusedPort = await freePort(); // nothing listens there
    // Accepts connections and never answers: the first-byte timeout must fire.
    silent = net.createServer((sock) => { held.push(sock); sock.on('error', () => {}); });
    await new Promise((resolve) => silent.listen(0, '127.0.0.1', resolve));
    gw = await startGateway({
      name: 'lifecycle-upstream-failures',
      routes: [
        { name: 'refused', to: `http://127.0.0.1:${refusedPort}/mcp` },
        { name: 'silent', to: `http://127.0.0.1:${silent.address().port}/mcp`, options: { timeout: '1s' } },
      ],
    });
  });
  after(async () => {
    await gw?.stop();
    for (const s of held) s.destroy();
    await new Promise((resolve) => silent?.close(resolve));
  });

  test('connection refused: 502, code -32000, the request id, logged', T, async () => {
    const r = await postMcp(gw.routeUrl('refused'), call('req-502', 'x'));
    assert.equal(r.status, 502);
    assert.deepEqual(JSON.parse(r.text), {
      jsonrpc: '2.0', id: 'req-502', error: { code: -32000, message: 'upstream unavailable' },
    });
    await sleep(100);
    const line = gw.accessLog().find((l) => l.route === 'refused');
    assert.equal(line?.status, 502);
    assert.equal(line?.error, 'upstream unavailable');
  });

  test('no first byte within the route timeout: 504, code -32001, the request id', T, async () => {
    const started = Date.now();
    const r = await postMcp(gw.routeUrl('silent'), call(504, 'x'), { timeoutMs: 8000 });
    const took = Date.now() - started;
    assert.equal(r.status, 504);
    assert.deepEqual(JSON.parse(r.text), {
      jsonrpc: '2.0', id: 504, error: { code: -32001, message: 'upstream timed out' },
    });
    assert.ok(took >= 900 && took < 4000, `answered after ${took} ms (route timeout 1s)`);
  });
});
