// Responses to server->client requests are judged by the method they answer (issue 4:
// "responses to server->client requests by method"). server-everything sends sampling and
// elicitation requests to the official SDK client through the gateway; the gateway notes
// each request it relays (per MCP session and id) and judges the client's answer as that
// method. The route's policy (Pomerium syntax):
//   [0] allow anyone
//   [1] deny elicitation/create            (the client's elicitation answers are refused)
// Checked: a sampling answer reaches the server (the tool call succeeds) and its audit
// record says method "response", name "sampling/createMessage", allowed by rule [0]; an
// elicitation answer is refused (the tool call never completes) with a deny record naming
// the rule; a response with an id the gateway never relayed is refused (403, -32013,
// reason unmatched_response); and `mcpgate policy test` judges a response with "answers".
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { DIRECT, connectClient, postMcp, startEverything, startGateway, textOf, tmpDir } from './lib/harness.mjs';
import { cli } from './lib/identity.mjs';
import { CODE, waitAudit } from './lib/policy.mjs';

const T = { timeout: 40_000 };
const POLICY = [
  { allow: { or: [{ accept: true }] } },
  { deny: { or: [{ mcp_method: 'elicitation/create' }] } },
];

describe('responses judged by the method they answer', { skip: DIRECT && 'E2E_DIRECT=1: needs the gateway' }, () => {
  let up;
  let gw;
  let client;
  const tmp = tmpDir('mcpgate-policy-resp-');

  before(async () => {
    up = await startEverything('streamableHttp', { name: 'policy-resp-everything' });
    gw = await startGateway({ name: 'policy-responses', routes: [{ name: 'ev', to: up.url, options: { policy: POLICY } }] });
    client = await connectClient(gw.routeUrl('ev'));
    // The sampling/elicitation tools are registered once the server has seen the
    // client's capabilities.
    for (let i = 0; i < 50; i++) {
      const names = (await client.listTools()).tools.map((t) => t.name);
      if (names.includes('trigger-sampling-request') && names.includes('trigger-elicitation-request')) break;
      await new Promise((r) => setTimeout(r, 100));
    }
  });
  after(async () => {
    await client?.close().catch(() => {});
    await gw?.stop();
    await up?.stop();
  });

  test('a sampling answer is allowed and recorded as the answer to sampling/createMessage', T, async () => {
    const n = client.serverRequests.length;
    const r = await client.callTool({ name: 'trigger-sampling-request', arguments: { prompt: 'p', maxTokens: 5 } },
      undefined, { timeout: 15_000 });
    assert.ok(client.serverRequests.slice(n).some((x) => x.method === 'sampling/createMessage'));
    assert.match(textOf(r), /e2e-sampled/);
    const rec = await waitAudit(gw, (x) => x.method === 'response' && x.name === 'sampling/createMessage',
      { what: 'the sampling answer' });
    assert.equal(rec.decision, 'allow');
    assert.equal(rec.reason, 'allowed');
    assert.equal(rec.rule, 'routes[ev].policy[0].allow.or[0]');
    assert.equal(rec.route, 'ev');
  });

  test('an elicitation answer is refused by the deny rule on elicitation/create', T, async () => {
    const n = client.serverRequests.length;
    // The client answers, the gateway refuses to pass the answer on, so the server's
    // tool never gets it: the call does not complete.
    await assert.rejects(
      client.callTool({ name: 'trigger-elicitation-request', arguments: {} }, undefined, { timeout: 4_000 }),
      /timed out|timeout/i,
    );
    assert.ok(client.serverRequests.slice(n).some((x) => x.method === 'elicitation/create'),
      'the client received elicitation/create');
    const rec = await waitAudit(gw, (x) => x.method === 'response' && x.name === 'elicitation/create',
      { what: 'the elicitation answer' });
    assert.equal(rec.decision, 'deny');
    assert.equal(rec.reason, 'denied_by_rule');
    assert.equal(rec.rule, 'routes[ev].policy[1].deny.or[0]');
  });

  test('a response to a request the gateway never relayed is refused', T, async () => {
    const sid = client.mcpTransport.sessionId;
    const r = await postMcp(gw.routeUrl('ev'), { jsonrpc: '2.0', id: 'made-up-4711', result: {} },
      { sessionId: sid, protocolVersion: client.mcpTransport.protocolVersion });
    assert.equal(r.status, 403, r.text);
    const body = JSON.parse(r.text);
    assert.equal(body.error.code, CODE.DENIED);
    assert.equal(body.error.message, 'this response answers no request the gateway relayed');
    const rec = await waitAudit(gw, (x) => x.decision_id === body.error.data.decision_id, { what: 'the unmatched response' });
    assert.equal(rec.method, 'response');
    assert.equal(rec.name, '');
    assert.equal(rec.reason, 'unmatched_response');
    assert.equal(rec.jsonrpc_id, 'made-up-4711');
  });

  test('mcpgate policy test judges a response by "answers"', T, async () => {
    const file = (name, obj) => { const f = path.join(tmp, name); fs.writeFileSync(f, JSON.stringify(obj)); return f; };
    const body = { jsonrpc: '2.0', id: 3, result: { action: 'accept' } };
    const denied = await cli(gw.configPath, ['policy', 'test', '--route', 'ev',
      '--request', file('elicit.json', { answers: 'elicitation/create', body })]);
    assert.match(denied.stdout, /deny/);
    assert.match(denied.stdout, /routes\[ev\]\.policy\[1\]\.deny\.or\[0\]/);
    const allowed = await cli(gw.configPath, ['policy', 'test', '--route', 'ev',
      '--request', file('sample.json', { answers: 'sampling/createMessage', body })]);
    assert.match(allowed.stdout, /allow/);
    const unmatched = await cli(gw.configPath, ['policy', 'test', '--route', 'ev',
      '--request', file('none.json', body)]);
    assert.match(unmatched.stdout, /unmatched_response/);
  });
});
