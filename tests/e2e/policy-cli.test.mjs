// `mcpgate policy test` and `mcpgate policy lint` (docs/policy.md, "Testing a policy"):
//   - the commands on their own: decisions, rule paths, reasons, defaults and errors in
//     text and JSON, exit codes 0 / 1 / 2, input and usage errors, lint findings with
//     FILE:LINE:COL;
//   - against the real gateway: requests sent through it by two service accounts in
//     different groups, and the same requests given to `policy test`, must get the same
//     answer (HTTP status, JSON-RPC error codes) and the same decision, rule and reason
//     as the audit records the gateway wrote.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { DIRECT, MCPGATE_BIN, postMcp, startSqlite, tmpDir, toYaml } from './lib/harness.mjs';
import { cliOk, pollUntil, run, startIdentityGateway } from './lib/identity.mjs';

const T = { timeout: 60_000 };

// The demo's policy, plus a rule on arguments.
const POLICY = [
  {
    allow: { or: [{ authenticated_user: true }] },
    deny: { and: [{ mcp_tool: { is: 'execute' } }, { groups: { exclude: 'admins' } }] },
  },
  { deny: { or: [{ 'mcp_argument/sql': { contains: 'DROP' } }] } },
];

const call = (id, name, args) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } });

function writeJson(dir, name, value) {
  const f = path.join(dir, name);
  fs.writeFileSync(f, typeof value === 'string' ? value : JSON.stringify(value));
  return f;
}

async function policyTest(config, route, identity, request, extra = []) {
  const args = ['policy', 'test', '-c', config, '--route', route, '--request', request];
  if (identity) args.push('--identity', identity);
  return run(MCPGATE_BIN, [...args, ...extra]);
}

async function policyJson(...a) {
  const r = await policyTest(...a.slice(0, 4), ['--json']);
  assert.ok(r.code === 0 || r.code === 1, `exit ${r.code}: ${r.stdout}${r.stderr}`);
  return { code: r.code, out: JSON.parse(r.stdout) };
}

describe('mcpgate policy test and lint, on their own', () => {
  let dir;
  let config;
  let bob;
  let root;
  before(() => {
    dir = tmpDir('mcpgate-policy-cli-');
    const route = (name, extra = {}) => ({
      name, from: `https://h.example/${name}`, to: 'http://127.0.0.1:9/mcp', ...extra,
    });
    config = writeJson(dir, 'mcpgate.yaml', toYaml({
      state_dir: path.join(dir, 'state'),
      routes: [
        route('sql', { policy: POLICY }),
        route('open'),
        route('pub', { allow_public_unauthenticated_access: true }),
        route('only-query', { policy: { allow: { and: [{ mcp_tool: 'query' }] } } }),
      ],
    }));
    bob = writeJson(dir, 'bob.json', { sub: 'user:bob@example.com', email: 'bob@example.com', groups: ['users'] });
    root = writeJson(dir, 'root.json', {
      sub: 'user:root@example.com', email: 'root@example.com', groups: ['users', 'admins'], client_id: 'claude',
    });
  });

  test('a tool call refused by a deny rule: the rule, the reason, -32602, exit 1', T, async () => {
    const req = writeJson(dir, 'exec.json', call(7, 'execute', { sql: 'DELETE FROM t' }));
    const { code, out } = await policyJson(config, 'sql', bob, req);
    assert.equal(code, 1);
    assert.equal(out.forwarded, false);
    assert.equal(out.status, 200);
    assert.equal(out.route_policy, 'routes[sql].policy');
    assert.equal(out.messages.length, 1);
    const m = out.messages[0];
    assert.equal(m.decision, 'deny');
    assert.equal(m.rule, 'routes[sql].policy[0].deny.and');
    assert.equal(m.reason, 'denied_by_rule');
    assert.equal(m.by_default, false);
    assert.equal(m.tool_class, 'destructive');
    assert.equal(m.id, 7);
    assert.deepEqual(m.error, { code: -32602, message: 'Unknown tool: execute' });

    const text = await policyTest(config, 'sql', bob, req);
    assert.equal(text.code, 1);
    assert.match(text.stdout, /message 1: tools\/call execute \(request, id 7, tool class destructive\)/);
    assert.match(text.stdout, /decision: deny\n {2}rule: {5}routes\[sql\]\.policy\[0\]\.deny\.and\n {2}reason: {3}denied_by_rule\n {2}default: {2}no\n/);
    assert.match(text.stdout, /error: {4}-32602 Unknown tool: execute/);
  });

  test('the same call by an admin is allowed, exit 0', T, async () => {
    const req = writeJson(dir, 'exec.json', call(7, 'execute', { sql: 'DELETE FROM t' }));
    const { code, out } = await policyJson(config, 'sql', root, req);
    assert.equal(code, 0);
    assert.equal(out.forwarded, true);
    assert.equal(out.status, null);
    assert.equal(out.messages[0].decision, 'allow');
    assert.equal(out.messages[0].rule, 'routes[sql].policy[0].allow.or[0]');
    assert.equal(out.messages[0].reason, 'allowed');
    assert.equal(out.messages[0].error, null);
    const text = await policyTest(config, 'sql', root, req);
    assert.match(text.stdout, /caller: {3}user:root@example\.com \(oauth, root@example\.com, groups users,admins, client claude\)/);
    assert.match(text.stdout, /result: allowed, the request is forwarded to the upstream/);
  });

  test('defaults: methods that need no allow rule, routes without a policy, public routes', T, async () => {
    const list = writeJson(dir, 'list.json', { jsonrpc: '2.0', id: 1, method: 'tools/list' });
    let r = await policyJson(config, 'only-query', bob, list);
    assert.equal(r.code, 0);
    assert.equal(r.out.messages[0].reason, 'allowed_by_default');
    assert.equal(r.out.messages[0].by_default, true);
    assert.equal(r.out.messages[0].rule, 'routes[only-query].policy');

    const other = writeJson(dir, 'other.json', call(2, 'execute', {}));
    r = await policyJson(config, 'only-query', bob, other);
    assert.equal(r.code, 1);
    assert.equal(r.out.messages[0].reason, 'no_rule_allowed');
    assert.equal(r.out.messages[0].error.code, -32602, 'a tool no rule allows is hidden too');

    r = await policyJson(config, 'open', bob, other);
    assert.equal(r.code, 0);
    assert.equal(r.out.route_policy, null);
    assert.equal(r.out.messages[0].rule, 'default:signed_in.allow.or[0]');

    r = await policyJson(config, 'open', null, other);
    assert.equal(r.code, 1, 'no identity on a route behind sign-in');
    assert.equal(r.out.status, 401);
    assert.deepEqual(r.out.refusal, { code: -32010, message: 'authentication required' });
    assert.deepEqual(r.out.messages, []);

    r = await policyJson(config, 'pub', bob, other);
    assert.equal(r.code, 0);
    assert.equal(r.out.messages[0].rule, 'default:anyone.allow.or[0]');
    const text = await policyTest(config, 'pub', bob, other);
    assert.match(text.stdout, /caller: {3}anonymous {3}\[public route: every caller is judged as anonymous\]/);
  });

  test('a described request: a batch refused whole, source, time, headers', T, async () => {
    const req = writeJson(dir, 'batch.json', {
      http_method: 'POST', path: '/sql', source_ip: '10.1.2.3', time: '2026-11-22T10:00:00Z',
      body: [call(1, 'query', { sql: 'SELECT 1' }), { jsonrpc: '2.0', method: 'notifications/initialized' },
        call(3, 'query', { sql: 'DROP TABLE t' })],
    });
    const { code, out } = await policyJson(config, 'sql', bob, req);
    assert.equal(code, 1);
    assert.deepEqual(out.messages.map((m) => [m.reason, m.error?.code ?? null]), [
      ['batch_refused', -32015], ['batch_refused', null], ['denied_by_rule', -32013],
    ]);
    assert.equal(out.messages[2].rule, 'routes[sql].policy[1].deny.or[0]');
    const text = await policyTest(config, 'sql', bob, req);
    assert.match(text.stdout, /request: {2}POST \/sql, source 10\.1\.2\.3, time 2026-11-22T10:00:00\.000Z/);
    assert.match(text.stdout, /error: {4}none \(a notification in a batch gets no answer\)/);

    const late = writeJson(dir, 'late.json', {
      headers: { 'MCP-Protocol-Version': '2025-11-25' }, body: [call(1, 'query', {}), call(2, 'query', {})],
    });
    let r = await policyJson(config, 'sql', bob, late);
    assert.equal(r.out.status, 400);
    assert.equal(r.out.refusal.code, -32600);

    const mismatch = writeJson(dir, 'mismatch.json', { headers: { 'Mcp-Name': 'query' }, body: call(1, 'execute', {}) });
    r = await policyJson(config, 'sql', root, mismatch);
    assert.equal(r.out.status, 400);
    assert.equal(r.out.refusal.code, -32020);

    const notJson = writeJson(dir, 'notjson.json', { body: '{"jsonrpc": "2.0", "id": 1,' });
    r = await policyJson(config, 'sql', root, notJson);
    assert.equal(r.out.status, 400);
    assert.equal(r.out.refusal.code, -32700);
  });

  test('errors: usage, configuration, input files (exit 2)', T, async () => {
    const req = writeJson(dir, 'ping.json', { jsonrpc: '2.0', id: 1, method: 'ping' });
    let r = await run(MCPGATE_BIN, ['policy', 'test', '-c', config, '--request', req]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /needs --route NAME and --request FILE/);
    r = await run(MCPGATE_BIN, ['policy', 'frobnicate', '-c', config]);
    assert.equal(r.code, 2);
    r = await policyTest(config, 'nope', bob, req);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /no route named 'nope'/);
    r = await policyTest(config, 'sql', writeJson(dir, 'badid.json', { groups: 'admins' }), req);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /badid\.json: groups must be an array/);
    r = await policyTest(config, 'sql', bob, writeJson(dir, 'badreq.json', { method: 'ping' }));
    assert.equal(r.code, 2);
    assert.match(r.stderr, /a JSON-RPC message needs "jsonrpc": "2.0"/);
    const broken = writeJson(dir, 'broken.yaml', 'routes:\n  - name: x\n    from: https://h.example/x\n'
      + '    to: http://127.0.0.1:9/mcp\n    policy:\n      allow: {or: [{emial: a@b.c}]}\n');
    r = await policyTest(broken, 'x', bob, req);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /broken\.yaml:6:\d+: routes\[x\]\.policy\.allow\.or\[0\]: unknown criterion 'emial'/);
  });

  test('lint: findings with FILE:LINE:COL, routes without a policy; exit 1, or 0 when clean', T, async () => {
    const f = writeJson(dir, 'lint.yaml', [
      'routes:',
      '  - name: wide',
      '    from: https://h.example/wide',
      '    to: http://127.0.0.1:9/mcp',
      '    policy:',
      '      allow: {or: [{accept: true}]}',
      '  - name: bare',
      '    from: https://h.example/bare',
      '    to: http://127.0.0.1:9/mcp',
      '  - name: pub',
      '    from: https://h.example/pub',
      '    to: http://127.0.0.1:9/mcp',
      '    allow_public_unauthenticated_access: true',
      '',
    ].join('\n'));
    const r = await run(MCPGATE_BIN, ['policy', 'lint', '-c', f]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.deepEqual(r.stdout.split('\n').filter(Boolean), [
      `${f}:6:15: routes[wide].policy.allow.or: this rule admits everyone, anonymous callers included`,
      `${f}:7:5: routes[bare]: route bare has no policy (any signed-in caller may use every tool)`,
    ]);
    assert.match(r.stderr, /2 findings/);

    const missing = await run(MCPGATE_BIN, ['policy', 'lint', '-c', path.join(dir, 'missing.yaml')]);
    assert.equal(missing.code, 2, 'a configuration that cannot be read is an error');
    const ok = writeJson(dir, 'clean.yaml', toYaml({
      routes: [{ name: 'sql', from: 'https://h.example/sql', to: 'http://127.0.0.1:9/mcp', policy: POLICY }],
    }));
    const c = await run(MCPGATE_BIN, ['policy', 'lint', '-c', ok]);
    assert.equal(c.code, 0, c.stdout + c.stderr);
    assert.equal(c.stdout, '');
  });
});

describe('mcpgate policy test agrees with the gateway', { skip: DIRECT && 'needs the gateway' }, () => {
  let s;
  let up;
  let dir;
  const who = {};
  before(async () => {
    dir = tmpDir('mcpgate-policy-agree-');
    up = await startSqlite('http', { name: 'policy-cli-sqlite' });
    s = await startIdentityGateway({
      name: 'policy-cli', upstream: up, routes: [{ name: 'sql', to: up.url, public: false, options: { policy: POLICY } }],
    });
    for (const [name, groups] of [['bob', 'users'], ['root', 'users,admins']]) {
      const created = await cliOk(s.config, ['service-accounts', 'create', name, '--groups', groups]);
      who[name] = {
        token: created.stdout.trim(),
        file: writeJson(dir, `${name}.json`, {
          sub: `sa:${name}`, name, groups: groups.split(','), idp: 'service_account', method: 'service_account',
        }),
      };
    }
  });
  after(async () => {
    try { await s?.stop(); } finally { await up?.stop(); }
  });

  test('the same decisions, rules, reasons, statuses and error codes', T, async () => {
    const url = s.url('sql');
    const cases = [
      { who: 'bob', body: call(101, 'query', { sql: 'SELECT 1' }) },
      { who: 'bob', body: call(102, 'execute', { sql: 'CREATE TABLE IF NOT EXISTS t(x)' }) },
      { who: 'root', body: call(103, 'execute', { sql: 'CREATE TABLE IF NOT EXISTS t(x)' }) },
      { who: 'bob', body: call(104, 'query', { sql: 'DROP TABLE t' }) },
      { who: 'bob', body: { jsonrpc: '2.0', id: 105, method: 'tools/list' } },
      { who: 'bob', body: [call(106, 'query', { sql: 'SELECT 1' }), call(107, 'execute', { sql: 'x' })] },
      { who: 'root', body: [call(108, 'query', { sql: 'SELECT 1' }), call(109, 'query', { sql: 'DROP x' })] },
      { who: 'bob', body: call(110, 'query', { sql: 'SELECT 1' }), headers: { 'Mcp-Name': 'execute' } },
      { who: 'bob', body: [call(111, 'query', {}), call(112, 'query', {})], headers: { 'MCP-Protocol-Version': '2025-11-25' } },
    ];
    const judged = [];
    for (const c of cases) {
      const sent = await postMcp(url, c.body, { headers: { authorization: `Bearer ${who[c.who].token}`, ...(c.headers ?? {}) } });
      const req = writeJson(dir, 'req.json', { ...(c.headers ? { headers: c.headers } : {}), body: c.body });
      const { out } = await policyJson(s.config, 'sql', who[c.who].file, req);
      const what = `${c.who} ${JSON.stringify(c.body)}`;
      if (out.forwarded) {
        assert.ok(!sent.messages.some((m) => m.error?.data?.decision_id), `${what}: not refused by the gateway: ${sent.text}`);
      } else {
        assert.equal(sent.status, out.status, `${what}: HTTP status: ${sent.text}`);
        const byId = new Map(sent.messages.map((m) => [m.id, m.error?.code]));
        if (out.refusal) assert.equal(sent.messages[0]?.error?.code, out.refusal.code, what);
        for (const m of out.messages) {
          if (m.error) assert.equal(byId.get(m.id), m.error.code, `${what}: error of id ${m.id}`);
        }
      }
      for (const m of out.messages) judged.push({ ...m, what });
    }
    // Each judged message has the gateway's audit record, with the same decision.
    const records = await pollUntil(async () => {
      const r = await cliOk(s.config, ['audit', 'query', '--json', '--limit', '1000']);
      const recs = JSON.parse(r.stdout);
      return judged.every((m) => recs.some((x) => x.jsonrpc_id === m.id)) ? recs : null;
    }, { ms: 10_000, intervalMs: 200 });
    assert.ok(records, 'every judged message has an audit record');
    assert.equal(judged.length, 9, 'messages judged');
    assert.deepEqual([...new Set(judged.map((m) => m.reason))].sort(),
      ['allowed', 'batch_refused', 'denied_by_rule'], 'the cases cover each outcome');
    for (const m of judged) {
      const rec = records.find((x) => x.jsonrpc_id === m.id);
      assert.deepEqual([rec.decision, rec.rule, rec.reason], [m.decision, m.rule, m.reason], `${m.what}: id ${m.id}`);
    }
    assert.equal(records.some((x) => [110, 111, 112].includes(x.jsonrpc_id)), false,
      'requests refused before judging leave no decision record');
  });
});
