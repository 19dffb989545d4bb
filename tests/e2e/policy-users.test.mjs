// Policy and audit with real clients (issue 4, "Tests that must exist"): two built-in
// accounts in different groups (`mcpgate users add --groups`), each signed in by the
// official SDK client through the whole OAuth flow, on a route in front of mcp-sqlite
// whose policy is written in Pomerium syntax (docs/policy.md):
//   routes[sql].policy[0]  allow anyone signed in
//   routes[sql].policy[1]  deny execute unless the caller is in admins      (by name)
//   routes[sql].policy[2]  deny analysts every tool that is not read_only   (by class;
//                          slow_count is classed `write` by the route's mcp.tool_classes)
//   routes[sql].policy[3]  deny any call whose /sql contains DROP           (by argument)
//   routes[sql].policy[4]  deny slow_count with /steps > 3                   (numeric)
// and a global policy that denies, on paths under /sqlro, every tool that is not
// read_only (http_path, and the class learned from mcp-sqlite's annotations).
// Asserted: each user's tools/list (exact names); allowed and denied calls, each denial
// a JSON-RPC error with the request's id, the documented code (-32602 "Unknown tool: X"
// for a tool the caller cannot see, -32013 otherwise) and a data.decision_id that finds
// its audit record; nothing denied reaches mcp-sqlite (its own log); the audit record of
// every call (identity, session, id, tool, arguments, decision, rule path, reason,
// upstream status); `mcpgate audit query` filters; `mcpgate audit verify` exits 0 on
// the intact chain and 1, naming the record, after a decision is edited or a line is
// deleted.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { DIRECT, startSqlite, textOf } from './lib/harness.mjs';
import { Browser, insecureFetch } from './lib/browser.mjs';
import { TestOAuthClientProvider, connectWithOAuth, formUserAgent } from './lib/oauth-client.mjs';
import { addUser, startIdentityGateway, tokenId } from './lib/identity.mjs';
import {
  CODE, auditPath, auditQuery, auditVerify, readAudit, waitAudit, waitAuditCount,
} from './lib/policy.mjs';

const T = { timeout: 60_000 };
const ANN = { email: 'ann@example.com', password: 'ann-password-123', groups: ['admins'] };
const BOB = { email: 'bob@example.com', password: 'bob-password-123', groups: ['analysts'] };
const ALL_TOOLS = ['list_tables', 'describe_table', 'query', 'execute', 'slow_count'];

const ROUTE_POLICY = [
  { allow: { or: [{ authenticated_user: true }] } },
  { deny: { and: [{ mcp_tool: 'execute' }, { groups: { exclude: 'admins' } }] } },
  { deny: { and: [{ mcp_tool_class: { not: 'read_only' } }, { groups: { has: 'analysts' } }] } },
  { deny: { or: [{ 'mcp_argument/sql': { contains: 'DROP' } }] } },
  { deny: { and: [{ mcp_tool: 'slow_count' }, { 'mcp_argument/steps': { gt: 3 } }] } },
];
const GLOBAL_POLICY = {
  allow: { or: [{ authenticated_user: true }] },
  deny: { and: [{ http_path: { starts_with: '/sqlro' } }, { mcp_tool_class: { not: 'read_only' } }] },
};
const ALLOWED_RULE = 'routes[sql].policy[0].allow.or[0]';

/**
 * A fetch for the SDK transport that keeps every JSON-RPC POST it made and, for JSON
 * answers, the answer itself: the test sees the exact error objects the gateway sent.
 */
function recordingFetch() {
  const exchanges = [];
  const f = async (url, init = {}) => {
    const res = await insecureFetch(url, init);
    if ((init.method ?? 'GET') === 'POST' && typeof init.body === 'string') {
      let req = null;
      try { req = JSON.parse(init.body); } catch { /* not JSON-RPC */ }
      const ex = { req, status: res.status, contentType: res.headers.get('content-type') ?? '', res: undefined };
      exchanges.push(ex);
      if (ex.contentType.includes('application/json')) {
        const text = await res.clone().text();
        try { ex.res = JSON.parse(text); } catch { ex.res = { raw: text }; }
      }
    }
    return res;
  };
  return { fetch: f, exchanges };
}

describe('policy with two signed-in users in different groups', { skip: DIRECT && 'E2E_DIRECT=1: needs the gateway' }, () => {
  let upstream;
  let s;
  const browsers = {};
  const users = {}; // who -> { client, transport, provider, rec, account, route }

  async function signInWithSdk(who, account, route) {
    browsers[account.email] ??= new Browser();
    const provider = await TestOAuthClientProvider.create({
      userAgent: formUserAgent(browsers[account.email], account),
      clientName: `policy-${who}`,
    });
    const rec = recordingFetch();
    const { client, transport, signedIn } = await connectWithOAuth(s.url(route), provider, { fetch: rec.fetch });
    assert.equal(signedIn, true, `${who} went through the OAuth flow`);
    users[who] = { client, transport, provider, rec, account, route };
    return users[who];
  }

  before(async () => {
    upstream = await startSqlite('http', { name: 'policy-users-sqlite' });
    s = await startIdentityGateway({
      name: 'policy-users',
      upstream,
      routes: [
        { name: 'sql', to: upstream.url, public: false, options: { policy: ROUTE_POLICY, mcp: { tool_classes: { slow_count: 'write' } } } },
        { name: 'sqlro', to: upstream.url, public: false },
      ],
      extra: { policy: GLOBAL_POLICY },
    });
    await addUser(s.config, ANN.email, ANN.password, { groups: ANN.groups });
    await addUser(s.config, BOB.email, BOB.password, { groups: BOB.groups });
    await signInWithSdk('ann', ANN, 'sql');
    await signInWithSdk('bob', BOB, 'sql');
  });
  after(async () => {
    for (const u of Object.values(users)) await u.client.close().catch(() => {});
    await s?.stop();
  });

  /** The last tools/call exchange the user's client made for this tool. */
  function lastExchange(u, name) {
    const ex = u.rec.exchanges.filter((e) => e.req?.method === 'tools/call' && e.req.params?.name === name).at(-1);
    assert.ok(ex, `no tools/call ${name} was sent`);
    return ex;
  }

  /** The identity an audit record must carry for this signed-in user. */
  function identityOf(u) {
    return {
      auth_method: 'oauth',
      client_id: u.provider.clientInformation().client_id,
      email: u.account.email,
      groups: u.account.groups,
      subject: `user:${u.account.email}`,
      token_id: tokenId(u.provider.tokens().access_token),
    };
  }

  /** The common fields of the audit record of a tools/call made by u. */
  function checkRecord(rec, u, { id, name, args, decision, rule, reason, upstreamStatus }) {
    assert.equal(rec.v, 1);
    assert.equal(rec.route, u.route);
    assert.deepEqual(rec.identity, identityOf(u));
    assert.equal(rec.source, '127.0.0.1');
    assert.equal(rec.session, u.transport.sessionId);
    assert.equal(rec.jsonrpc_id, id);
    assert.equal(rec.method, 'tools/call');
    assert.equal(rec.name, name);
    assert.deepEqual(rec.arguments, args);
    assert.equal(rec.decision, decision);
    assert.equal(rec.rule, rule);
    assert.equal(rec.reason, reason);
    assert.equal(rec.upstream_status, upstreamStatus);
    assert.match(rec.decision_id, /^[0-9a-f]{32}$/);
    assert.match(rec.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  }

  /** A call the policy allows: it reaches mcp-sqlite, and its record says allow. */
  async function expectAllowed(who, name, args, { rule = ALLOWED_RULE } = {}) {
    const u = users[who];
    const seen = upstream.messageLog().length;
    const r = await u.client.callTool({ name, arguments: args });
    assert.notEqual(r.isError, true, `${who} ${name}: ${textOf(r)}`);
    const ex = lastExchange(u, name);
    const id = ex.req.id;
    assert.equal(ex.status, 200);
    const got = upstream.messageLog().slice(seen).filter((m) => m.method === 'tools/call');
    assert.deepEqual(got.map((m) => [m.id, m.tool]), [[id, name]], `${who} ${name} reached mcp-sqlite once`);
    const rec = await waitAudit(s.gw, (x) => x.session === u.transport.sessionId && x.jsonrpc_id === id && x.method === 'tools/call',
      { what: `record of ${who}'s ${name} (id ${id})` });
    checkRecord(rec, u, { id, name, args, decision: 'allow', rule, reason: 'allowed', upstreamStatus: 200 });
    return r;
  }

  /**
   * A call the policy refuses: the SDK gets the JSON-RPC error, the answer on the wire
   * has the request's id, the code, the message and data.decision_id; nothing reaches
   * mcp-sqlite; the record with that decision_id says deny, with the rule path.
   */
  async function expectDenied(who, name, args, { code, message, rule }) {
    const u = users[who];
    const seen = upstream.messageLog().length;
    let err;
    await assert.rejects(u.client.callTool({ name, arguments: args }), (e) => { err = e; return true; });
    const ex = lastExchange(u, name);
    const id = ex.req.id;
    assert.equal(ex.status, 200, `${who} ${name}: a denial is HTTP 200 with a JSON-RPC error`);
    assert.equal(ex.res?.jsonrpc, '2.0');
    assert.equal(ex.res?.id, id, `${who} ${name}: the error carries the request's id`);
    assert.equal(ex.res?.error?.code, code, JSON.stringify(ex.res));
    assert.equal(ex.res.error.message, message);
    assert.deepEqual(Object.keys(ex.res.error.data ?? {}), ['decision_id']);
    const decisionId = ex.res.error.data.decision_id;
    assert.match(decisionId, /^[0-9a-f]{32}$/);
    assert.equal(err.code, code, `the SDK surfaces the code: ${err.message}`);
    assert.equal(err.data?.decision_id, decisionId);
    assert.deepEqual(upstream.messageLog().slice(seen), [], `${who} ${name}: nothing reached mcp-sqlite`);
    const rec = await waitAudit(s.gw, (x) => x.decision_id === decisionId, { what: `record ${decisionId}` });
    checkRecord(rec, u, { id, name, args, decision: 'deny', rule, reason: 'denied_by_rule', upstreamStatus: 0 });
    assert.ok(rec.latency_ms >= 0);
    return { id, decisionId, rec };
  }

  const toolNames = async (who) => (await users[who].client.listTools()).tools.map((t) => t.name);

  test('tools/list: each user sees exactly the tools the policy lets them call', T, async () => {
    assert.deepEqual(await toolNames('ann'), ALL_TOOLS);
    assert.deepEqual(await toolNames('bob'), ['list_tables', 'describe_table', 'query']);
    // Listing is allowed by the route's allow rule; each list is recorded once.
    for (const who of ['ann', 'bob']) {
      const u = users[who];
      const rec = await waitAudit(s.gw, (x) => x.session === u.transport.sessionId && x.method === 'tools/list');
      assert.equal(rec.decision, 'allow');
      assert.equal(rec.rule, ALLOWED_RULE);
      assert.equal(rec.reason, 'allowed');
      assert.equal(rec.upstream_status, 200);
      assert.deepEqual(rec.identity, identityOf(u));
    }
  });

  test('ann (admins): allowed by name and class, denied by argument (string and number)', T, async () => {
    const q = await expectAllowed('ann', 'query', { sql: 'SELECT count(*) AS n FROM customers' });
    assert.deepEqual(q.structuredContent?.rows, [[6]], textOf(q));
    const ins = await expectAllowed('ann', 'execute',
      { sql: "INSERT INTO customers (name, email, country, created_at) VALUES ('Zed', 'zed@example.com', 'NL', '2025-01-01')" });
    assert.equal(ins.structuredContent?.changes, 1, textOf(ins));
    await expectAllowed('ann', 'slow_count', { steps: 3, interval_ms: 0 });
    await expectDenied('ann', 'query', { sql: 'DROP TABLE orders' },
      { code: CODE.DENIED, message: 'denied by policy', rule: 'routes[sql].policy[3].deny.or[0]' });
    await expectDenied('ann', 'execute', { sql: 'DROP TABLE orders' },
      { code: CODE.DENIED, message: 'denied by policy', rule: 'routes[sql].policy[3].deny.or[0]' });
    await expectDenied('ann', 'slow_count', { steps: 4, interval_ms: 0 },
      { code: CODE.DENIED, message: 'denied by policy', rule: 'routes[sql].policy[4].deny.and' });
    // Numbers compare as numbers: 3.5 > 3, and "10" (a string) is not a number.
    await expectDenied('ann', 'slow_count', { steps: 3.5, interval_ms: 0 },
      { code: CODE.DENIED, message: 'denied by policy', rule: 'routes[sql].policy[4].deny.and' });
    const str = await users.ann.client.callTool({ name: 'slow_count', arguments: { steps: '10', interval_ms: 0 } });
    assert.equal(str.isError, true, 'mcp-sqlite itself refuses a string count');
    assert.match(textOf(str), /"steps" must be an integer/);
    const strId = lastExchange(users.ann, 'slow_count').req.id;
    const strRec = await waitAudit(s.gw, (x) => x.session === users.ann.transport.sessionId && x.jsonrpc_id === strId);
    assert.deepEqual([strRec.decision, strRec.rule, strRec.arguments], ['allow', ALLOWED_RULE, { steps: '10', interval_ms: 0 }]);
  });

  test('bob (analysts): execute hidden by name, slow_count hidden by class, read-only tools allowed', T, async () => {
    await expectAllowed('bob', 'list_tables', {});
    await expectAllowed('bob', 'describe_table', { table: 'orders' });
    await expectAllowed('bob', 'query', { sql: 'SELECT name FROM customers ORDER BY id LIMIT 2' });
    await expectDenied('bob', 'execute', { sql: 'DELETE FROM orders' },
      { code: CODE.UNKNOWN, message: 'Unknown tool: execute', rule: 'routes[sql].policy[1].deny.and' });
    await expectDenied('bob', 'slow_count', { steps: 1, interval_ms: 0 },
      { code: CODE.UNKNOWN, message: 'Unknown tool: slow_count', rule: 'routes[sql].policy[2].deny.and' });
    // A tool nobody has: for bob the unknown class counts as destructive, so it is
    // refused by the class rule in the gateway, exactly as a hidden one.
    await expectDenied('bob', 'no_such_tool', {},
      { code: CODE.UNKNOWN, message: 'Unknown tool: no_such_tool', rule: 'routes[sql].policy[2].deny.and' });
  });

  // Regression: whether a denied tool is "hidden" was judged from the bare name without
  // the class learned from tools/list, so a visible tool denied by its arguments was
  // answered as if it did not exist.
  test('bob: query (visible to bob) denied by argument is -32013 "denied by policy", not "Unknown tool"', T, async () => {
    assert.ok((await toolNames('bob')).includes('query'));
    await expectDenied('bob', 'query', { sql: 'SELECT 1; DROP TABLE orders' },
      { code: CODE.DENIED, message: 'denied by policy', rule: 'routes[sql].policy[3].deny.or[0]' });
  });

  test('the global policy on /sqlro: http_path plus the destructive class learned from annotations', T, async () => {
    await signInWithSdk('ann-ro', ANN, 'sqlro');
    assert.deepEqual(await toolNames('ann-ro'), ['list_tables', 'describe_table', 'query', 'slow_count']);
    // The route has no policy of its own: the daemon's default admits anyone signed in
    // (src/gw/decide.c), and the record names that built-in policy.
    await expectAllowed('ann-ro', 'list_tables', {}, { rule: 'default:signed_in.allow.or[0]' });
    await expectDenied('ann-ro', 'execute', { sql: "UPDATE orders SET status = 'x'" },
      { code: CODE.UNKNOWN, message: 'Unknown tool: execute', rule: 'policy.deny.and' });
  });

  test('audit query: --user/--decision/--tool/--route select exactly the matching records', T, async () => {
    const all = readAudit(s.gw);
    const ids = (recs) => recs.map((r) => r.decision_id).sort();
    const bobDenied = all.filter((r) => r.identity.email === BOB.email && r.decision === 'deny' && r.route === 'sql');
    assert.equal(bobDenied.length, 4, 'execute, slow_count, no_such_tool and the DROP query');
    assert.deepEqual(ids(await auditQuery(s.config, ['--user', BOB.email, '--decision', 'deny', '--route', 'sql'])), ids(bobDenied));
    assert.deepEqual(ids(await auditQuery(s.config, ['--user', `user:${BOB.email}`, '--decision', 'deny', '--route', 'sql'])), ids(bobDenied));
    const executes = all.filter((r) => r.name === 'execute');
    const byTool = await auditQuery(s.config, ['--tool', 'execute']);
    assert.deepEqual(ids(byTool), ids(executes));
    assert.deepEqual([...new Set(byTool.map((r) => `${r.identity.email} ${r.route} ${r.decision}`))].sort(), [
      'ann@example.com sql allow', 'ann@example.com sql deny', 'ann@example.com sqlro deny', 'bob@example.com sql deny',
    ]);
    // Each denial's decision_id finds exactly one record through the CLI too.
    for (const d of bobDenied) {
      const found = (await auditQuery(s.config, ['--user', BOB.email, '--decision', 'deny'])).filter((r) => r.decision_id === d.decision_id);
      assert.equal(found.length, 1);
      assert.deepEqual(found[0], d);
    }
  });

  test('audit verify: intact chain exits 0; an edited decision and a deleted line exit 1 naming the record', T, async () => {
    const file = auditPath(s.gw);
    const n = readAudit(s.gw).length;
    await waitAuditCount(s.gw, n);
    const original = fs.readFileSync(file, 'utf8');
    const lines = original.split('\n').filter(Boolean);
    assert.equal(lines.length, n);
    const ok = await auditVerify(s.config);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, new RegExp(`: ${n} records, chain intact; head seq ${n} sha256 [0-9a-f]{64}`));
    lines.forEach((l, i) => assert.equal(JSON.parse(l).seq, i + 1, `line ${i + 1} is seq ${i + 1}`));

    // Bob's denied execute, somewhere in the middle: "deny" becomes "allow".
    const idx = lines.findIndex((l) => { const r = JSON.parse(l); return r.identity.email === BOB.email && r.name === 'execute' && r.decision === 'deny'; });
    assert.ok(idx > 0 && idx < lines.length - 1, `bob's execute at line ${idx + 1} of ${lines.length}`);
    const seq = idx + 1;
    try {
      const edited = [...lines];
      edited[idx] = edited[idx].replace('"decision":"deny"', '"decision":"allow"');
      assert.notEqual(edited[idx], lines[idx]);
      fs.writeFileSync(file, edited.join('\n') + '\n');
      const bad = await auditVerify(s.config);
      assert.equal(bad.code, 1, bad.stdout + bad.stderr);
      assert.match(bad.stdout + bad.stderr, new RegExp(`audit\\.jsonl:${seq}: edited: seq ${seq}\\b`));
      assert.match(bad.stdout + bad.stderr, new RegExp(`${seq - 1} records verified before it`));

      fs.writeFileSync(file, original);
      assert.equal((await auditVerify(s.config)).code, 0, 'restored: intact again');

      const deleted = lines.filter((_, i) => i !== idx);
      fs.writeFileSync(file, deleted.join('\n') + '\n');
      const gap = await auditVerify(s.config);
      assert.equal(gap.code, 1, gap.stdout + gap.stderr);
      assert.match(gap.stdout + gap.stderr, new RegExp(`audit\\.jsonl:${seq}: deleted: `));
      assert.match(gap.stdout + gap.stderr, new RegExp(`\\bseq ${seq}\\b`));
    } finally {
      fs.writeFileSync(file, original);
    }
    const again = await auditVerify(s.config);
    assert.equal(again.code, 0, again.stdout + again.stderr);
  });
});
