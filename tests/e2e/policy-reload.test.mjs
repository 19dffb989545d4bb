// Policies at run time (issue 4): a reload (config rewritten, SIGHUP) swaps the policy
// for the next request while a stream opened under the old one stays open and keeps
// delivering its events; and a policy with date / day_of_week / time_of_day decides by
// the clock (rules computed from the current time in a fixed-offset zone where it is
// about noon, so the test never straddles a day or a window edge).
//   before: [0] allow anyone signed in; [1] deny execute unless admins
//   after:  the same, plus [2] deny list_tables from 127.0.0.0/8 (source_ip),
//           [3] deny describe_table of /table "orders", [4] deny slow_count
// The caller is a service account in analysts; the stream is slow_count with a
// progressToken (mcp-sqlite answers it as SSE, one progress event per step).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DIRECT, startSqlite } from './lib/harness.mjs';
import { pollUntil, startIdentityGateway } from './lib/identity.mjs';
import { CODE, call, openStream, rawSession, serviceToken, waitAudit } from './lib/policy.mjs';

const T = { timeout: 40_000 };
const BASE = [
  { allow: { or: [{ authenticated_user: true }] } },
  { deny: { and: [{ mcp_tool: 'execute' }, { groups: { exclude: 'admins' } }] } },
];
const NEXT = [
  ...BASE,
  { deny: { and: [{ mcp_tool: 'list_tables' }, { source_ip: '127.0.0.0/8' }] } },
  { deny: { and: [{ mcp_tool: 'describe_table' }, { 'mcp_argument/table': 'orders' }] } },
  { deny: { or: [{ mcp_tool: 'slow_count' }] } },
];

// Analysts may only use read-only tools (classes learned from mcp-sqlite's annotations).
const CLASS_POLICY = [
  { allow: { or: [{ authenticated_user: true }] } },
  { deny: { and: [{ mcp_tool_class: { not: 'read_only' } }, { groups: { has: 'analysts' } }] } },
];

const DAYS = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'];
/**
 * A fixed UTC offset (whole hours, -12..+12) in which it is now between 11:30 and
 * 12:30, and the weekday and date there.
 */
function noonZone(now = new Date()) {
  const mins = now.getUTCHours() * 60 + now.getUTCMinutes();
  const h = Math.round((12 * 60 - mins) / 60);
  const tz = `${h < 0 ? '-' : '+'}${String(Math.abs(h)).padStart(2, '0')}:00`;
  const local = new Date(now.getTime() + h * 3600_000);
  return { tz, day: DAYS[local.getUTCDay()], next: DAYS[(local.getUTCDay() + 1) % 7], localMinutes: local.getUTCHours() * 60 + local.getUTCMinutes() };
}
const isoDate = (ms) => new Date(ms).toISOString().slice(0, 10);

describe('policy reload with an open stream, and time criteria', { skip: DIRECT && 'E2E_DIRECT=1: needs the gateway' }, () => {
  let upstream;
  let s;
  let token;
  let zone;
  const routes = (policy, timedPolicy) => [
    { name: 'sql', to: upstream.url, public: false, options: { policy } },
    { name: 'timed', to: upstream.url, public: true, options: { policy: timedPolicy } },
    { name: 'cls', to: upstream.url, public: false, options: { policy: CLASS_POLICY } },
  ];
  let timedPolicy;

  before(async () => {
    zone = noonZone();
    const now = Date.now();
    timedPolicy = [
      { allow: { or: [{ accept: true }] } },
      // Holds now: today (there), 10:00-14:00 (there), between yesterday and the day after tomorrow (UTC).
      { deny: { and: [
        { mcp_tool: 'describe_table' },
        { day_of_week: { days: zone.day, timezone: zone.tz } },
        { time_of_day: { timezone: zone.tz, after: '10:00', before: '14:00' } },
        { date: { after: isoDate(now - 86400_000), before: isoDate(now + 2 * 86400_000) } },
      ] } },
      // Never holds now: tomorrow; a window that wraps midnight (14:00-10:00); before 2000.
      { deny: { and: [{ mcp_tool: 'list_tables' }, { day_of_week: { days: zone.next, timezone: zone.tz } }] } },
      { deny: { and: [{ mcp_tool: 'list_tables' }, { time_of_day: { timezone: zone.tz, after: '14:00', before: '10:00' } }] } },
      { deny: { and: [{ mcp_tool: 'query' }, { date: { before: '2000-01-01' } }] } },
    ];
    upstream = await startSqlite('http', { name: 'policy-reload-sqlite' });
    s = await startIdentityGateway({ name: 'policy-reload', upstream, routes: routes(BASE, timedPolicy) });
    token = await serviceToken(s.config, 'stream-bot', ['analysts']);
  });
  after(async () => { await s?.stop(); });

  test('a reload applies to the next request; the open stream stays open and delivers its events', T, async () => {
    const url = s.url('sql');
    const c = await rawSession(url, token, { protocolVersion: '2025-06-18' });
    const names = async (id) => (await c.post({ jsonrpc: '2.0', id, method: 'tools/list' })).messages[0].result.tools.map((t) => t.name);
    assert.deepEqual(await names(2), ['list_tables', 'describe_table', 'query', 'slow_count']);
    for (const [id, name, args] of [[3, 'list_tables', {}], [4, 'describe_table', { table: 'orders' }]]) {
      const r = await c.post(call(id, name, args));
      assert.equal(r.messages[0]?.result?.isError, false, `before the reload ${name}: ${r.text.slice(0, 200)}`);
    }

    const STEPS = 8;
    const stream = await openStream(url, {
      headers: { authorization: `Bearer ${token}`, 'mcp-session-id': c.sessionId, 'mcp-protocol-version': c.protocolVersion },
      body: { jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'slow_count', arguments: { steps: STEPS, interval_ms: 500 }, _meta: { progressToken: 'reload-1' } } },
    });
    assert.equal(stream.status, 200);
    assert.match(stream.contentType, /^text\/event-stream/);
    assert.ok(await pollUntil(() => stream.events.length >= 2, { ms: 5000 }), `progress before the reload: ${JSON.stringify(stream.events)}`);

    const reloadsBefore = s.gw.stderrText().split('configuration reloaded').length;
    s.gw.updateConfig({ routes: routes(NEXT, timedPolicy) });
    await s.gw.reload();
    assert.ok(await pollUntil(() => s.gw.stderrText().split('configuration reloaded').length > reloadsBefore, { ms: 3000 }),
      `no "configuration reloaded" line:\n${s.gw.stderrText().slice(-800)}`);
    const reloadedAt = Date.now();
    const eventsAtReload = stream.events.length;
    assert.ok(eventsAtReload < STEPS + 1, 'the stream is still running at the reload');

    // The next requests follow the new policy, on fresh connections (either worker).
    const seen = upstream.messageLog().length;
    for (let i = 0; i < 4; i++) {
      const id = 10 + i * 10;
      const lt = await c.post(call(id, 'list_tables'));
      assert.deepEqual([lt.status, lt.messages[0]?.id, lt.messages[0]?.error?.code, lt.messages[0]?.error?.message],
        [200, id, CODE.UNKNOWN, 'Unknown tool: list_tables'], lt.text);
      const dt = await c.post(call(id + 1, 'describe_table', { table: 'orders' }));
      assert.deepEqual([dt.status, dt.messages[0]?.id, dt.messages[0]?.error?.code, dt.messages[0]?.error?.message],
        [200, id + 1, CODE.DENIED, 'denied by policy'], dt.text);
      const sc = await c.post(call(id + 2, 'slow_count', { steps: 1, interval_ms: 0 }));
      assert.deepEqual([sc.messages[0]?.id, sc.messages[0]?.error?.code], [id + 2, CODE.UNKNOWN], sc.text);
    }
    const ok = await c.post(call(50, 'describe_table', { table: 'customers' }));
    assert.equal(ok.messages[0]?.result?.isError, false, ok.text.slice(0, 200));
    assert.deepEqual(await names(51), ['describe_table', 'query']);
    assert.deepEqual(upstream.messageLog().slice(seen).map((m) => [m.id, m.tool ?? m.method]),
      [[50, 'describe_table'], [51, 'tools/list']], 'only the allowed requests reached mcp-sqlite');
    const dl = await waitAudit(s.gw, (x) => x.session === c.sessionId && x.jsonrpc_id === 10);
    assert.deepEqual([dl.decision, dl.rule, dl.reason], ['deny', 'routes[sql].policy[2].deny.and', 'denied_by_rule']);

    // The stream opened before the reload: every step, then the result, on the same response.
    const events = await stream.done;
    const progress = events.filter((e) => e.msg.method === 'notifications/progress');
    assert.deepEqual(progress.map((e) => e.msg.params.progress), Array.from({ length: STEPS }, (_, i) => i + 1));
    assert.ok(progress.every((e) => e.msg.params.progressToken === 'reload-1'));
    const after = events.filter((e) => e.at > reloadedAt);
    assert.ok(after.length >= 2, `events after the reload: ${after.length} (of ${events.length}; ${eventsAtReload} before)`);
    const last = events.at(-1).msg;
    assert.equal(last.id, 5);
    assert.deepEqual(last.result?.content, [{ type: 'text', text: `counted ${STEPS}` }]);
    // Its decision was taken under the old policy and is recorded when it ends.
    const rec = await waitAudit(s.gw, (x) => x.session === c.sessionId && x.jsonrpc_id === 5);
    assert.deepEqual([rec.decision, rec.name, rec.rule, rec.upstream_status], ['allow', 'slow_count', 'routes[sql].policy[0].allow.or[0]', 200]);
    assert.ok(rec.latency_ms >= 3500, `latency_ms ${rec.latency_ms} covers the whole stream`);
    assert.equal(s.gw.alive(), true);
  });

  test('date, day_of_week and time_of_day decide by the clock', T, async () => {
    assert.ok(zone.localMinutes >= 11 * 60 && zone.localMinutes <= 13 * 60, `local time ${zone.localMinutes} min in ${zone.tz}`);
    const url = s.url('timed');
    const c = await rawSession(url, null);
    const list = await c.post({ jsonrpc: '2.0', id: 2, method: 'tools/list' });
    assert.deepEqual(list.messages[0].result.tools.map((t) => t.name), ['list_tables', 'query', 'execute', 'slow_count'],
      `${zone.day} around noon at ${zone.tz}`);
    const dt = await c.post(call(3, 'describe_table', { table: 'orders' }));
    assert.deepEqual([dt.messages[0]?.id, dt.messages[0]?.error?.code, dt.messages[0]?.error?.message], [3, CODE.UNKNOWN, 'Unknown tool: describe_table'], dt.text);
    const rec = await waitAudit(s.gw, (x) => x.decision_id === dt.messages[0].error.data.decision_id);
    assert.deepEqual([rec.decision, rec.rule, rec.identity.auth_method], ['deny', 'routes[timed].policy[1].deny.and', 'none']);
    for (const [id, name, args] of [[4, 'list_tables', {}], [5, 'query', { sql: 'SELECT 1' }]]) {
      const r = await c.post(call(id, name, args));
      assert.equal(r.messages[0]?.result?.isError, false, `${name}: ${r.text.slice(0, 200)}`);
    }
  });

  // Regression: a reload used to forget the tool classes learned from tools/list, so a
  // read-only tool allowed a moment before was refused as unknown after a SIGHUP.
  test('a reload that changes nothing keeps read-only tools allowed for a class-restricted caller', T, async () => {
    const c = await rawSession(s.url('cls'), token);
    assert.equal((await c.post({ jsonrpc: '2.0', id: 2, method: 'tools/list' })).status, 200);
    const before = await c.post(call(3, 'query', { sql: 'SELECT 1' }));
    assert.equal(before.messages[0]?.result?.isError, false, before.text.slice(0, 200));
    const reloads = s.gw.stderrText().split('configuration reloaded').length;
    await s.gw.reload();
    assert.ok(await pollUntil(() => s.gw.stderrText().split('configuration reloaded').length > reloads, { ms: 3000 }));
    const afterReload = await c.post(call(4, 'query', { sql: 'SELECT 1' }));
    assert.equal(afterReload.messages[0]?.error, undefined, afterReload.text.slice(0, 200));
    assert.equal(afterReload.messages[0]?.result?.isError, false);
  });
});
