// The audit sink fails (docs/audit.md "When records cannot be written"): the audit file
// lives on a 64 KiB tmpfs mounted for this test, which the test then fills. With
// audit.on_failure: deny (the default) every request is refused with 503, JSON-RPC
// -32014 and Retry-After: 1, and nothing reaches mcp-sqlite; once space is freed the
// queued records are written, requests are served again, and `mcpgate audit verify`
// finds the chain intact with a record for every request that was served.
// Needs `mount -t tmpfs` (root in this sandbox); skipped with the reason otherwise.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { DIRECT, postMcp, sleep, startGateway, startSqlite, tmpDir } from './lib/harness.mjs';
import { pollUntil } from './lib/identity.mjs';
import { CODE, auditVerify, call, rawSession } from './lib/policy.mjs';

const T = { timeout: 40_000 };

/** Mounts a 64 KiB tmpfs on a fresh directory: { dir } or { why } (the reason to skip). */
function mountSmallTmpfs() {
  if (DIRECT) return { why: 'E2E_DIRECT=1: needs the gateway' };
  const dir = tmpDir('mcpgate-audit-tmpfs-');
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k,mode=0700', 'tmpfs', dir], { stdio: 'pipe', timeout: 10_000 });
  } catch (e) {
    return { why: `cannot mount a tmpfs here (${String(e.stderr || e.message).trim().split('\n')[0]}): the sink cannot be made to fail reliably` };
  }
  let mounted = true;
  const unmount = () => {
    if (!mounted) return;
    try { execFileSync('umount', [dir], { stdio: 'pipe', timeout: 10_000 }); } catch {
      try { execFileSync('umount', ['-l', dir], { stdio: 'pipe', timeout: 10_000 }); } catch { /* best effort */ }
    }
    mounted = false;
  };
  process.prependListener('exit', unmount); // before the harness removes its temporary directories
  return { dir, unmount };
}

const mnt = mountSmallTmpfs();

describe('the audit sink fails', { skip: mnt.why ?? false }, () => {
  let upstream;
  let gw;
  let auditFile;
  const filler = () => path.join(mnt.dir, 'filler');

  before(async () => {
    auditFile = path.join(mnt.dir, 'audit.jsonl');
    upstream = await startSqlite('http', { name: 'policy-audit-sqlite' });
    gw = await startGateway({
      name: 'policy-audit-sink',
      routes: [{ name: 'sql', to: upstream.url, public: true }],
      extra: { audit: { path: auditFile } },
    });
  });
  after(async () => {
    try { await gw?.stop(); } finally { mnt.unmount(); }
  });

  const records = () => fs.readFileSync(auditFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));

  /** Fills the tmpfs: writes 4 KiB blocks until ENOSPC (bounded). Returns the bytes written. */
  function fill() {
    const fd = fs.openSync(filler(), 'w');
    const block = Buffer.alloc(4096, 0x61);
    let total = 0;
    try {
      for (let i = 0; i < 64; i++) {
        try { total += fs.writeSync(fd, block); } catch (e) { if (e.code === 'ENOSPC') return total; throw e; }
      }
      throw new Error(`no ENOSPC after ${total} bytes on a 64 KiB tmpfs`);
    } finally {
      fs.closeSync(fd);
    }
  }

  test('full disk: 503 -32014 with Retry-After, nothing forwarded; space freed: served again, chain intact', T, async () => {
    const c = await rawSession(gw.routeUrl('sql'), null, { protocolVersion: '2025-06-18' });
    const served = []; // ids of tools/call requests that were answered by mcp-sqlite
    let id = 100;
    const q = async () => {
      const r = await c.post(call(++id, 'query', { sql: 'SELECT 1' }));
      if (r.status === 200) served.push(id);
      return r;
    };
    assert.equal((await q()).status, 200);
    assert.ok(await pollUntil(() => records().some((x) => x.jsonrpc_id === id), { ms: 3000 }), 'the first record is written');

    fill();
    // The next records no longer fit: requests are refused as soon as a write has failed
    // (a request already admitted is still answered; its record waits in the queue).
    let refused = null;
    for (let i = 0; i < 100 && !refused; i++) {
      const r = await q();
      if (r.status === 503) refused = r;
      else { assert.equal(r.status, 200, r.text); await sleep(30); }
    }
    assert.ok(refused, `no 503 after 100 requests on a full disk; served ${served.length}`);
    const m = refused.messages[0];
    assert.deepEqual([m?.jsonrpc, m?.id, m?.error?.code, m?.error?.message],
      ['2.0', id, CODE.AUDIT_UNAVAILABLE, 'the audit trail cannot be written; refusing to act unrecorded'], refused.text);
    assert.equal(refused.headers.get('retry-after'), '1');
    assert.match(gw.stderrText(), /audit: cannot write to the file sink/);

    // Every kind of request is refused, and none reaches mcp-sqlite.
    const seen = upstream.messageLog().length;
    for (const [what, body] of [
      ['tools/call', call(7, 'list_tables')],
      ['tools/list', { jsonrpc: '2.0', id: 8, method: 'tools/list' }],
      ['ping', { jsonrpc: '2.0', id: 9, method: 'ping' }],
      ['a notification', { jsonrpc: '2.0', method: 'notifications/roots/list_changed' }],
    ]) {
      const r = await c.post(body);
      assert.equal(r.status, 503, `${what}: ${r.text}`);
      assert.equal(r.messages[0]?.error?.code, CODE.AUDIT_UNAVAILABLE, `${what}: ${r.text}`);
    }
    const init = await postMcp(gw.routeUrl('sql'), {
      jsonrpc: '2.0', id: 1, method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'policy-audit', version: '1.0.0' } },
    });
    assert.equal(init.status, 503, init.text);
    await sleep(150);
    assert.deepEqual(upstream.messageLog().slice(seen), [], 'nothing reached mcp-sqlite while the sink failed');

    // Space again: the writer's retry (backoff at most 5 s) succeeds and requests are served.
    fs.rmSync(filler());
    const back = await pollUntil(async () => { const r = await q(); return r.status === 200 ? r : null; }, { ms: 10_000, intervalMs: 100 });
    assert.ok(back, 'still refused 10 s after space was freed');
    assert.match(gw.stderrText(), /audit: the file sink works again after \d+ failed writes/);

    // Every served request has exactly one record; the chain is intact.
    const lastId = served.at(-1);
    assert.ok(await pollUntil(() => records().some((x) => x.jsonrpc_id === lastId), { ms: 3000 }), 'the last record is written');
    const recs = records();
    assert.deepEqual(recs.map((x) => x.seq), recs.map((_, i) => i + 1), 'seq 1..n without gaps');
    const calls = recs.filter((x) => x.method === 'tools/call' && x.name === 'query');
    assert.deepEqual(calls.map((x) => x.jsonrpc_id), served, 'one record per served call, in order');
    assert.ok(calls.every((x) => x.decision === 'allow' && x.upstream_status === 200 && x.identity.auth_method === 'none'));
    const v = await auditVerify(null, { file: auditFile });
    assert.equal(v.code, 0, v.stdout + v.stderr);
    assert.match(v.stdout, new RegExp(`: ${recs.length} records, chain intact`));
  });
});
