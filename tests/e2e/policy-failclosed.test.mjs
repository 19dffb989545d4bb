// Fail-closed inspection (issue 4: "no body shape gets a call past a deny rule"): a
// denied tool call hidden in every body shape a client can send, and bodies the gateway
// cannot be certain about, each refused with a clear JSON-RPC error while mcp-sqlite's
// own log (--log, one line per message it received) proves nothing reached it. Each
// shape also has an allowed twin that does reach mcp-sqlite, so a refusal cannot come
// from the shape alone. Callers are service accounts (no SDK needed): `ann-bot` in
// admins, `bob-bot` in analysts; the route's policy (Pomerium syntax):
//   [0] allow anyone signed in
//   [1] deny execute unless admins                (bob-bot: execute is hidden, -32602)
//   [2] deny any call whose /sql contains DROP     (-32013)
// Shapes: 100 KiB of padding before the name (Pomerium inspects 4 KiB), a batch under
// 2025-03-26 with a denied and an allowed call (both refused: -32602 and -32015), a
// chunked body (raw socket, the name split across chunks; and curl), bodies that are not
// JSON or not JSON-RPC (400 -32700), duplicate keys, a name that is not a string, a name
// written with a \u escape, Mcp-Method / Mcp-Name headers that disagree with the body
// (400 -32020), and batches under MCP-Protocol-Version 2025-06-18 and later (400).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { DIRECT, curl, rawHttp, sleep, startSqlite, tmpDir } from './lib/harness.mjs';
import { startIdentityGateway } from './lib/identity.mjs';
import { CODE, call, rawSession, readAudit, serviceToken, waitAudit } from './lib/policy.mjs';

const T = { timeout: 30_000 };
const PAD = 100 * 1024;
const POLICY = [
  { allow: { or: [{ authenticated_user: true }] } },
  { deny: { and: [{ mcp_tool: 'execute' }, { groups: { exclude: 'admins' } }] } },
  { deny: { or: [{ 'mcp_argument/sql': { contains: 'DROP' } }] } },
];

describe('fail-closed inspection', { skip: DIRECT && 'E2E_DIRECT=1: needs the gateway' }, () => {
  let upstream;
  let s;
  let url;
  let host;
  let ann; // admins, protocol 2025-11-25
  let bob; // analysts, protocol 2025-11-25
  let bobOld; // analysts, protocol 2025-03-26 (batches exist)
  const tmp = tmpDir('mcpgate-policy-fc-');

  before(async () => {
    upstream = await startSqlite('http', { name: 'policy-fc-sqlite' });
    s = await startIdentityGateway({
      name: 'policy-failclosed', upstream, routes: [{ name: 'sql', to: upstream.url, public: false, options: { policy: POLICY } }],
    });
    url = s.url('sql');
    host = new URL(url).host;
    const annToken = await serviceToken(s.config, 'ann-bot', ['admins']);
    const bobToken = await serviceToken(s.config, 'bob-bot', ['analysts']);
    ann = await rawSession(url, annToken);
    bob = await rawSession(url, bobToken);
    bobOld = await rawSession(url, bobToken, { protocolVersion: '2025-03-26' });
    // The gateway learns the tools' classes from a tools/list answer.
    for (const c of [ann, bob]) assert.equal((await c.post({ jsonrpc: '2.0', id: 2, method: 'tools/list' })).status, 200);
  });
  after(async () => { await s?.stop(); });

  const logged = () => upstream.messageLog().length;

  /**
   * Runs send() and asserts that nothing reached mcp-sqlite: its log has no new line
   * 150 ms after the answer (it writes the line before it answers anything).
   */
  async function nothingForwarded(what, send) {
    const before = logged();
    const r = await send();
    await sleep(150);
    const extra = upstream.messageLog().slice(before);
    assert.deepEqual(extra, [], `${what}: reached mcp-sqlite (answer ${r.status}: ${(r.text ?? r.body ?? '').slice(0, 200)})`);
    return r;
  }

  /** Runs send() and asserts that exactly these [id, tool] calls reached mcp-sqlite. */
  async function forwarded(what, expected, send) {
    const before = logged();
    const r = await send();
    const got = upstream.messageLog().slice(before).map((m) => [m.id, m.tool ?? m.method]);
    assert.deepEqual(got, expected, `${what}: what reached mcp-sqlite (answer ${r.status}: ${(r.text ?? r.body ?? '').slice(0, 200)})`);
    return r;
  }

  /** A single JSON-RPC error answer with this HTTP status, id, code (and message). */
  function assertError(r, { status, id, code, message, decision = false }) {
    assert.equal(r.status, status, r.text);
    assert.equal(r.messages.length, 1, r.text);
    const m = r.messages[0];
    assert.equal(m.jsonrpc, '2.0');
    assert.equal(m.id, id, r.text);
    assert.equal(m.error?.code, code, r.text);
    if (message instanceof RegExp) assert.match(m.error.message, message);
    else if (message !== undefined) assert.equal(m.error.message, message);
    if (decision) {
      assert.deepEqual(Object.keys(m.error.data ?? {}), ['decision_id'], r.text);
      assert.match(m.error.data.decision_id, /^[0-9a-f]{32}$/);
    }
    return m;
  }

  /**
   * JSON text of a tools/call with 100 KiB of padding before its name and method: in
   * the arguments (where: 'args'), in params._meta ('meta'), or as JSON whitespace
   * ('space').
   */
  function paddedCall(id, name, sql, where) {
    const pad = 'x'.repeat(PAD);
    const args = where === 'args' ? `{"pad":"${pad}","sql":${JSON.stringify(sql)}}` : `{"sql":${JSON.stringify(sql)}}`;
    const meta = where === 'meta' ? `"_meta":{"pad":"${pad}"},` : '';
    const space = where === 'space' ? ' '.repeat(PAD) : '';
    return `{"jsonrpc":"2.0","id":${id},"params":{${meta}"arguments":${args},${space}"name":${JSON.stringify(name)}},${space}"method":"tools/call"}`;
  }

  test('100 KiB of padding before the name: the denied call is refused, the allowed one passes', T, async () => {
    for (const [id, where] of [[10, 'meta'], [13, 'space']]) {
      const okBody = paddedCall(id, 'query', 'SELECT 1 AS one', where);
      assert.ok(okBody.indexOf('"name"') > PAD);
      const ok = await forwarded(`query padded (${where})`, [[id, 'query']], () => ann.post(okBody));
      assert.equal(ok.status, 200);
      assert.deepEqual(ok.messages[0]?.result?.structuredContent?.rows, [[1]], ok.text.slice(0, 300));
    }

    const hidden = await nothingForwarded('padded execute (bob)', () => bob.post(paddedCall(11, 'execute', 'DELETE FROM orders', 'args')));
    const m = assertError(hidden, { status: 200, id: 11, code: CODE.UNKNOWN, message: 'Unknown tool: execute', decision: true });
    const rec = await waitAudit(s.gw, (x) => x.decision_id === m.error.data.decision_id);
    assert.equal(rec.decision, 'deny');
    assert.equal(rec.rule, 'routes[sql].policy[1].deny.and');
    assert.equal(rec.name, 'execute');
    assert.equal(rec.jsonrpc_id, 11);
    assert.equal(rec.identity.subject, 'sa:bob-bot');
    assert.equal(rec.identity.auth_method, 'service_account');
    assert.deepEqual(rec.identity.groups, ['analysts']);
    // audit.arguments: redacted (the default): long strings are cut at 256 bytes.
    assert.deepEqual(rec.arguments, { pad: `${'x'.repeat(256)}...[truncated ${PAD - 256} bytes]`, sql: 'DELETE FROM orders' });

    for (const [id, where] of [[12, 'meta'], [14, 'space'], [15, 'args']]) {
      const drop = await nothingForwarded(`DROP padded (${where})`, () => ann.post(paddedCall(id, 'query', 'SELECT 1; DROP TABLE orders', where)));
      assertError(drop, { status: 200, id, code: CODE.DENIED, message: 'denied by policy', decision: true });
    }
  });

  test('a batch (2025-03-26) with a denied and an allowed call: both refused, nothing forwarded', T, async () => {
    const allowed = await forwarded('allowed batch', [[20, 'query'], [21, 'list_tables']],
      () => bobOld.post([call(20, 'query', { sql: 'SELECT 2' }), call(21, 'list_tables')]));
    assert.equal(allowed.status, 200, allowed.text);
    assert.deepEqual(allowed.messages.map((x) => [x.id, x.result?.isError]), [[20, false], [21, false]], allowed.text);

    const r = await nothingForwarded('mixed batch', () => bobOld.post([
      call(22, 'query', { sql: 'SELECT 3' }),
      { jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 'x', progress: 1 } },
      call(23, 'execute', { sql: 'DELETE FROM orders' }),
    ]));
    assert.equal(r.status, 200, r.text);
    assert.equal(Array.isArray(JSON.parse(r.text)), true, 'a batch is answered with an array');
    assert.deepEqual(r.messages.map((x) => [x.id, x.error?.code, x.error?.message]), [
      [22, CODE.BATCH_REFUSED, 'another message of this batch was refused'],
      [23, CODE.UNKNOWN, 'Unknown tool: execute'],
    ]);
    const [innocent, guilty] = r.messages.map((x) => x.error.data.decision_id);
    assert.notEqual(innocent, guilty);
    const ri = await waitAudit(s.gw, (x) => x.decision_id === innocent);
    const rg = await waitAudit(s.gw, (x) => x.decision_id === guilty);
    assert.deepEqual([ri.decision, ri.reason, ri.name, ri.jsonrpc_id, ri.upstream_status], ['deny', 'batch_refused', 'query', 22, 0]);
    assert.deepEqual([rg.decision, rg.reason, rg.name, rg.jsonrpc_id, rg.rule], ['deny', 'denied_by_rule', 'execute', 23, 'routes[sql].policy[1].deny.and']);
    // The notification in the refused batch is recorded too (every decision is).
    await waitAudit(s.gw, (x) => x.method === 'notifications/progress' && x.session === bobOld.sessionId && x.decision === 'deny');

    // The denied call last, after 100 KiB of allowed padding calls in the same batch.
    const many = Array.from({ length: 50 }, (_, i) => call(100 + i, 'query', { sql: `SELECT ${i} /* ${'p'.repeat(2048)} */` }));
    many.push(call(150, 'query', { sql: 'DROP TABLE orders' }));
    const big = await nothingForwarded('large batch', () => bobOld.post(many));
    assert.equal(big.status, 200);
    assert.equal(big.messages.length, 51);
    assert.deepEqual(big.messages.slice(0, 50).map((x) => x.error?.code), Array(50).fill(CODE.BATCH_REFUSED));
    assert.equal(big.messages[50].error?.code, CODE.DENIED);
    assert.equal(big.messages[50].id, 150);

    // An element that cannot be judged spoils the whole batch: 400, nothing forwarded.
    for (const [what, body] of [
      ['an element whose name is not a string', `[${JSON.stringify(call(24, 'query', { sql: 'SELECT 1' }))},{"jsonrpc":"2.0","id":25,"method":"tools/call","params":{"name":7}}]`],
      ['an element that is not an object', `[${JSON.stringify(call(26, 'query', { sql: 'SELECT 1' }))},5]`],
    ]) {
      const bad = await nothingForwarded(what, () => bobOld.post(body));
      assert.equal(bad.status, 400, `${what}: ${bad.text}`);
      assert.equal(bad.messages[0]?.error?.code, CODE.PARSE, `${what}: ${bad.text}`);
    }
  });

  /** The head of a raw POST to the route in bob's session. */
  function rawHead(session, extra = []) {
    return [
      `POST /sql HTTP/1.1`, `Host: ${host}`, `Authorization: Bearer ${session.token}`,
      'Content-Type: application/json', 'Accept: application/json, text/event-stream',
      `Mcp-Session-Id: ${session.sessionId}`, `Mcp-Protocol-Version: ${session.protocolVersion}`, 'Connection: close', ...extra,
    ].join('\r\n') + '\r\n\r\n';
  }
  /** body cut into pieces at these offsets, as HTTP/1.1 chunks. */
  function chunked(body, cuts) {
    const parts = [];
    let at = 0;
    for (const c of [...cuts, body.length]) { parts.push(body.slice(at, c)); at = c; }
    return parts.map((p) => `${Buffer.byteLength(p).toString(16)}\r\n${p}\r\n`).join('') + '0\r\n\r\n';
  }
  const rawAnswer = (r) => ({ status: r.status, text: r.body, messages: r.body ? [JSON.parse(r.body)] : [] });

  test('a chunked body (raw socket; the name split across chunks) is judged like any other', T, async () => {
    const okBody = JSON.stringify(call(30, 'query', { sql: 'SELECT 30' }));
    const ok = await forwarded('chunked query', [[30, 'query']], () => rawHttp(s.gw.port,
      [rawHead(bob, ['Transfer-Encoding: chunked']), chunked(okBody, [5, okBody.indexOf('query') + 2])], { delayMs: 30, timeoutMs: 5000 }));
    assert.equal(ok.status, 200, ok.raw.slice(0, 300));
    assert.equal(JSON.parse(ok.body).result?.isError, false);

    const body = JSON.stringify(call(31, 'execute', { sql: 'DELETE FROM orders' }));
    const cut = body.indexOf('execute') + 3; // "exe" | "cute"
    const r = await nothingForwarded('chunked execute', () => rawHttp(s.gw.port,
      [rawHead(bob, ['Transfer-Encoding: chunked']), chunked(body, [1, cut, cut + 1])], { delayMs: 30, timeoutMs: 5000 }));
    assertError(rawAnswer(r), { status: 200, id: 31, code: CODE.UNKNOWN, message: 'Unknown tool: execute', decision: true });
  });

  test('a chunked 100 KiB body sent by curl: refused, nothing forwarded', T, async () => {
    const file = path.join(tmp, 'padded.json');
    fs.writeFileSync(file, paddedCall(32, 'execute', 'DELETE FROM orders'));
    const r = await nothingForwarded('curl chunked', () => curl([
      '-H', `Authorization: Bearer ${bob.token}`, '-H', 'Content-Type: application/json',
      '-H', 'Accept: application/json, text/event-stream', '-H', `Mcp-Session-Id: ${bob.sessionId}`,
      '-H', `Mcp-Protocol-Version: ${bob.protocolVersion}`, '-H', 'Transfer-Encoding: chunked',
      '-w', '\n%{http_code}', '--data-binary', `@${file}`, url,
    ]));
    assert.equal(r.code, 0, r.stderr);
    const nl = r.stdout.lastIndexOf('\n');
    const status = Number(r.stdout.slice(nl + 1));
    const text = r.stdout.slice(0, nl);
    assertError({ status, text, messages: [JSON.parse(text)] }, { status: 200, id: 32, code: CODE.UNKNOWN, message: 'Unknown tool: execute', decision: true });
  });

  test('bodies that are not valid JSON or not JSON-RPC: 400 -32700, nothing forwarded', T, async () => {
    const q = JSON.stringify(call(40, 'query', { sql: 'SELECT 1' }));
    const x = JSON.stringify(call(41, 'execute', { sql: 'DELETE FROM orders' }));
    const deep = `{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"execute","arguments":{"sql":"DELETE FROM orders","n":${'['.repeat(5000)}${']'.repeat(5000)}}}}`;
    const cases = [
      ['truncated JSON', x.slice(0, -2), null],
      ['two JSON texts in one body (an allowed call, then a denied one)', q + x, null],
      ['a JSON text followed by garbage', `${x} trailing`, null],
      ['an empty body', '', null],
      ['a JSON string', '"tools/call"', null],
      ['a JSON number', '41', null],
      ['null', 'null', null],
      ['an array of numbers', '[1,2]', null],
      ['no jsonrpc member', JSON.stringify({ id: 43, method: 'tools/call', params: { name: 'execute', arguments: { sql: 'DELETE FROM orders' } } }), null],
      ['jsonrpc 1.0', JSON.stringify({ jsonrpc: '1.0', id: 44, method: 'tools/call', params: { name: 'execute', arguments: {} } }), null],
      ['neither method nor result', JSON.stringify({ jsonrpc: '2.0', id: 45, params: { name: 'execute', arguments: {} } }), null],
      ['an object as id', JSON.stringify({ jsonrpc: '2.0', id: { a: 1 }, method: 'tools/call', params: { name: 'execute', arguments: {} } }), null],
      ['a method that is not a string', JSON.stringify({ jsonrpc: '2.0', id: 46, method: ['tools/call'], params: { name: 'execute', arguments: {} } }), null],
      ['arguments nested 5,000 deep', deep, null],
      ['invalid UTF-8 in the name', Buffer.concat([Buffer.from('{"jsonrpc":"2.0","id":47,"method":"tools/call","params":{"name":"exec'), Buffer.from([0xff]), Buffer.from('ute","arguments":{}}}')]), null],
    ];
    for (const [what, body] of cases) {
      const r = await nothingForwarded(what, () => bob.post(body));
      assert.equal(r.status, 400, `${what}: ${r.text}`);
      assert.equal(r.messages.length, 1, `${what}: ${r.text}`);
      assert.equal(r.messages[0].error?.code, CODE.PARSE, `${what}: ${r.text}`);
      assert.equal(r.messages[0].id, null, `${what}: ${r.text}`);
    }
  });

  test('duplicate keys anywhere (method, name, an argument) are refused: 400 -32700', T, async () => {
    const cases = [
      ['two methods', '{"jsonrpc":"2.0","id":50,"method":"tools/call","method":"ping","params":{"name":"execute","arguments":{"sql":"DELETE FROM orders"}}}'],
      ['two methods, the denied one last', '{"jsonrpc":"2.0","id":51,"method":"ping","params":{"name":"execute","arguments":{"sql":"DELETE FROM orders"}},"method":"tools/call"}'],
      ['two names', '{"jsonrpc":"2.0","id":52,"method":"tools/call","params":{"name":"query","name":"execute","arguments":{"sql":"DELETE FROM orders"}}}'],
      ['two params', '{"jsonrpc":"2.0","id":53,"method":"tools/call","params":{"name":"query","arguments":{"sql":"SELECT 1"}},"params":{"name":"execute","arguments":{"sql":"DELETE FROM orders"}}}'],
      ['two sql arguments', '{"jsonrpc":"2.0","id":54,"method":"tools/call","params":{"name":"query","arguments":{"sql":"SELECT 1","sql":"DROP TABLE orders"}}}'],
      ['two ids', '{"jsonrpc":"2.0","id":55,"id":56,"method":"tools/call","params":{"name":"execute","arguments":{}}}'],
    ];
    for (const [what, body] of cases) {
      const r = await nothingForwarded(what, () => bob.post(body));
      assert.equal(r.status, 400, `${what}: ${r.text}`);
      assert.equal(r.messages[0]?.error?.code, CODE.PARSE, `${what}: ${r.text}`);
      assert.equal(r.messages[0]?.error?.message, 'body is not valid JSON', `${what}: ${r.text}`);
    }
  });

  test('a tools/call whose name is not a string, or absent: 400 -32700 with the request id', T, async () => {
    for (const [id, params] of [[60, { name: 42 }], [61, { name: null }], [62, { name: ['execute'] }], [63, { name: { n: 'execute' } }], [64, { arguments: {} }], [65, undefined]]) {
      const body = { jsonrpc: '2.0', id, method: 'tools/call', ...(params ? { params: { arguments: { sql: 'DELETE FROM orders' }, ...params } } : {}) };
      const r = await nothingForwarded(`params ${JSON.stringify(params)}`, () => bob.post(body));
      assertError(r, { status: 400, id, code: CODE.PARSE, message: 'params.name must be a string for this method' });
    }
  });

  test('a name written with a \\u escape is judged by what it says', T, async () => {
    const r = await nothingForwarded('exec\\u0075te', () => bob.post(
      '{"jsonrpc":"2.0","id":66,"method":"tools/call","params":{"name":"exec\\u0075te","arguments":{"sql":"DELETE FROM orders"}}}'));
    assertError(r, { status: 200, id: 66, code: CODE.UNKNOWN, message: 'Unknown tool: execute', decision: true });
    const d = await nothingForwarded('DR\\u004fP', () => ann.post(
      '{"jsonrpc":"2.0","id":67,"method":"tools/call","params":{"name":"query","arguments":{"sql":"SELECT 1; DR\\u004fP TABLE orders"}}}'));
    assertError(d, { status: 200, id: 67, code: CODE.DENIED, message: 'denied by policy', decision: true });
  });

  test('Mcp-Method / Mcp-Name headers that disagree with the body: 400 -32020', T, async () => {
    const ok = await forwarded('agreeing headers', [[70, 'query']], () => bob.post(call(70, 'query', { sql: 'SELECT 70' }),
      { headers: { 'mcp-method': 'tools/call', 'mcp-name': 'query' } }));
    assert.equal(ok.status, 200, ok.text);
    const bodyX = call(71, 'execute', { sql: 'DELETE FROM orders' });
    for (const [what, headers] of [
      ['Mcp-Method: ping', { 'mcp-method': 'ping' }],
      ['Mcp-Name: query', { 'mcp-method': 'tools/call', 'mcp-name': 'query' }],
      ['Mcp-Name alone', { 'mcp-name': 'list_tables' }],
    ]) {
      // ann may call execute: the refusal is the headers' alone.
      const r = await nothingForwarded(what, () => ann.post(bodyX, { headers }));
      assertError(r, { status: 400, id: 71, code: CODE.HEADER_MISMATCH, message: 'Mcp-Method / Mcp-Name headers do not match the body' });
    }
    const q = JSON.stringify(call(72, 'query', { sql: 'SELECT 72' }));
    const two = await nothingForwarded('two Mcp-Method headers', () => rawHttp(s.gw.port,
      rawHead(ann, ['Mcp-Method: tools/call', 'Mcp-Method: tools/call', `Content-Length: ${q.length}`]) + q, { timeoutMs: 5000 }));
    assertError(rawAnswer(two), { status: 400, id: 72, code: CODE.HEADER_MISMATCH });
    const batch = await nothingForwarded('Mcp-Method on a batch', () => bobOld.post([call(73, 'query', { sql: 'SELECT 73' })],
      { headers: { 'mcp-method': 'tools/call' } }));
    assertError(batch, { status: 400, id: 73, code: CODE.HEADER_MISMATCH });
  });

  test('a batch under MCP-Protocol-Version 2025-06-18 or later: 400, nothing forwarded', T, async () => {
    for (const pv of ['2025-06-18', '2025-11-25']) {
      const r = await nothingForwarded(`batch at ${pv}`, () => bobOld.post([call(80, 'query', { sql: 'SELECT 80' }), call(81, 'list_tables')], { protocolVersion: pv }));
      assertError(r, { status: 400, id: 80, code: CODE.INVALID_REQUEST, message: 'batches are not part of this protocol version (2025-06-18 and later)' });
    }
  });

  test('after all of it: the gateway still serves, and no refused call left an allow record', T, async () => {
    const r = await forwarded('a last query', [[90, 'query']], () => bob.post(call(90, 'query', { sql: 'SELECT 90' })));
    assert.equal(r.status, 200);
    const allowedExecutes = readAudit(s.gw).filter((x) => x.name === 'execute' && x.decision === 'allow');
    assert.deepEqual(allowedExecutes, []);
    assert.deepEqual(upstream.messageLog().filter((m) => m.tool === 'execute'), [], 'mcp-sqlite never received execute');
    assert.equal(s.gw.alive(), true);
  });
});
