// The MCP feature set through every kind of route, with the official SDK client:
//   server-everything behind a Streamable HTTP route, a legacy HTTP+SSE route and a
//   gateway-hosted stdio route; mcp-sqlite behind a Streamable HTTP and a stdio route.
// Per route: initialize, tools/list, tools/call, resources, prompts (everything),
// notifications (logging, progress), server->client requests (sampling, elicitation),
// then DELETE of the session and proof that the session is gone.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { McpError, ListResourcesResultSchema } from '@modelcontextprotocol/sdk/types.js';
import {
  connectClient, postMcp, startEverything, startGateway, startSqlite, textOf, waitForNotification, within, sleep,
} from './lib/harness.mjs';

const T = { timeout: 30_000 };

/** After DELETE, a request carrying the old session id must be refused. */
async function assertSessionGone(client, url, statuses) {
  const sid = client.mcpTransport.sessionId;
  const version = client.mcpTransport.protocolVersion;
  assert.ok(sid, 'the route issued an Mcp-Session-Id');
  await within(10_000, client.mcpTransport.terminateSession(), 'DELETE session');
  const r = await postMcp(url, { jsonrpc: '2.0', id: 99, method: 'tools/list' }, { sessionId: sid, protocolVersion: version });
  assert.ok(statuses.includes(r.status), `request with the terminated session id: HTTP ${r.status} (want ${statuses.join(' or ')}): ${r.text.slice(0, 200)}`);
  await client.close();
}

// ---------------------------------------------------------------------------

describe('server-everything routes', () => {
  let gw;
  const ups = {};

  before(async () => {
    ups.http = await startEverything('streamableHttp', { name: 'everything-http' });
    ups.sse = await startEverything('sse', { name: 'everything-sse' });
    ups.stdio = await startEverything('stdio');
    gw = await startGateway({
      name: 'gateway-everything',
      routes: [
        { name: 'everything', to: ups.http.url },
        { name: 'legacy', to: `sse+${ups.sse.url}` },
        { name: 'stdio', stdio: ups.stdio.stdio },
      ],
    });
  });
  after(async () => {
    await gw?.stop();
    for (const u of Object.values(ups)) await u?.stop();
  });

  // Statuses a request with a terminated session may get. A gateway-held session
  // (stdio, legacy SSE) must be 404 (MCP transports: "respond ... with HTTP 404 Not
  // Found"). On the Streamable HTTP route the gateway may pass the upstream's answer
  // through, and server-everything itself answers unknown sessions with 400.
  const routes = [
    { label: 'Streamable HTTP route', route: 'everything', gone: [404, 400] },
    { label: 'legacy HTTP+SSE route', route: 'legacy', gone: [404] },
    { label: 'stdio route', route: 'stdio', gone: [404] },
  ];

  for (const { label, route, gone } of routes) {
    describe(label, () => {
      let client;
      let url;
      const need = (t) => {
        url = gw.routeUrl(route);
        if (!url) { t.skip('E2E_DIRECT=1: route has no direct HTTP equivalent'); return false; }
        return true;
      };
      const needClient = (t) => {
        if (!need(t)) return false;
        if (!client) { t.skip('no session: initialize failed'); return false; }
        return true;
      };

      test('initialize', T, async (t) => {
        if (!need(t)) return;
        client = await connectClient(url);
        assert.equal(client.getServerVersion()?.name, 'mcp-servers/everything');
        const caps = client.getServerCapabilities();
        for (const c of ['tools', 'resources', 'prompts', 'logging']) assert.ok(caps?.[c], `capability ${c}`);
        assert.ok(client.mcpTransport.sessionId, 'Mcp-Session-Id issued');
        assert.match(client.mcpTransport.protocolVersion ?? '', /^\d{4}-\d{2}-\d{2}$/);
      });

      test('tools/list', T, async (t) => {
        if (!needClient(t)) return;
        // The sampling/elicitation tools are registered once the server has seen
        // notifications/initialized; give that a moment (bounded).
        let names = [];
        for (let i = 0; i < 30; i++) {
          names = (await client.listTools()).tools.map((x) => x.name);
          if (names.includes('trigger-sampling-request') && names.includes('trigger-elicitation-request')) break;
          await sleep(100);
        }
        for (const n of ['echo', 'get-sum', 'trigger-long-running-operation', 'toggle-simulated-logging',
          'trigger-sampling-request', 'trigger-elicitation-request']) {
          assert.ok(names.includes(n), `tool ${n} listed (got ${names.join(', ')})`);
        }
      });

      test('tools/call echo and get-sum', T, async (t) => {
        if (!needClient(t)) return;
        const msg = `hello through ${route} ✓ "quoted" \\ backslash`;
        assert.equal(textOf(await client.callTool({ name: 'echo', arguments: { message: msg } })), `Echo: ${msg}`);
        assert.equal(textOf(await client.callTool({ name: 'get-sum', arguments: { a: 2, b: 40 } })), 'The sum of 2 and 40 is 42.');
        const bad = await client.callTool({ name: 'get-sum', arguments: { a: 'x' } }).catch((e) => e);
        assert.ok(bad instanceof McpError || bad?.isError === true, 'invalid arguments give a JSON-RPC error or isError');
      });

      test('resources/list, templates, read', T, async (t) => {
        if (!needClient(t)) return;
        const { resources } = await client.listResources();
        assert.ok(resources.length > 0, 'some resources listed');
        const first = resources[0];
        const read = await client.readResource({ uri: first.uri });
        assert.equal(read.contents[0].uri, first.uri);
        assert.ok(read.contents[0].text !== undefined || read.contents[0].blob !== undefined);
        const { resourceTemplates } = await client.listResourceTemplates();
        assert.ok(resourceTemplates.some((x) => x.uriTemplate.startsWith('demo://resource/dynamic/text/')));
        const dyn = await client.readResource({ uri: 'demo://resource/dynamic/text/7' });
        assert.equal(dyn.contents[0].uri, 'demo://resource/dynamic/text/7');
        assert.ok(dyn.contents[0].text.length > 0);
      });

      test('prompts/list and prompts/get', T, async (t) => {
        if (!needClient(t)) return;
        const names = (await client.listPrompts()).prompts.map((p) => p.name);
        assert.ok(names.includes('simple-prompt') && names.includes('args-prompt'), names.join(', '));
        assert.equal(textOf(await client.getPrompt({ name: 'simple-prompt' })), 'This is a simple prompt without arguments.');
        const p = await client.getPrompt({ name: 'args-prompt', arguments: { city: 'Paris', state: 'TX' } });
        assert.equal(textOf(p), "What's weather in Paris, TX?");
      });

      test('logging/setLevel and notifications/message', T, async (t) => {
        if (!needClient(t)) return;
        assert.deepEqual(await client.setLoggingLevel('debug'), {});
        const before = client.notifications.length;
        // Sends one log message at once (unrelated to any request: it travels on the
        // standalone GET stream), then one every 5 s until toggled off.
        const r = await client.callTool({ name: 'toggle-simulated-logging', arguments: {} });
        assert.match(textOf(r), /Started simulated/);
        try {
          const n = await waitForNotification(client,
            (x, i) => x.method === 'notifications/message' && client.notifications.indexOf(x) >= before,
            { timeoutMs: 8000, what: 'notifications/message' });
          assert.match(String(n.params.data), /-level message|level-message/);
        } finally {
          await client.callTool({ name: 'toggle-simulated-logging', arguments: {} });
        }
      });

      test('progress notifications', T, async (t) => {
        if (!needClient(t)) return;
        const progress = [];
        const r = await client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 1, steps: 3 } },
          undefined, { onprogress: (p) => progress.push(p), timeout: 15_000 });
        assert.match(textOf(r), /Long running operation completed/);
        // The last progress notification and the result are sent back to back; the
        // SDK client drops a progress notification it handles after the response, so
        // only the first two are certain to be seen.
        assert.ok(progress.length >= 2, `progress: ${JSON.stringify(progress)}`);
        assert.deepEqual(progress.slice(0, 2).map((p) => p.progress), [1, 2]);
        assert.ok(progress.every((p) => p.total === 3));
      });

      test('sampling: server->client request answered by the client', T, async (t) => {
        if (!needClient(t)) return;
        const n = client.serverRequests.length;
        const r = await client.callTool({ name: 'trigger-sampling-request', arguments: { prompt: 'e2e-prompt', maxTokens: 20 } },
          undefined, { timeout: 15_000 });
        const req = client.serverRequests.slice(n).find((x) => x.method === 'sampling/createMessage');
        assert.ok(req, 'the client received sampling/createMessage');
        assert.match(textOf(r), /LLM sampling result/);
        assert.match(textOf(r), /e2e-sampled\(Resource trigger-sampling-request context: e2e-prompt\)/);
      });

      test('elicitation: server->client request answered by the client', T, async (t) => {
        if (!needClient(t)) return;
        const n = client.serverRequests.length;
        const r = await client.callTool({ name: 'trigger-elicitation-request', arguments: {} }, undefined, { timeout: 15_000 });
        assert.ok(client.serverRequests.slice(n).some((x) => x.method === 'elicitation/create'), 'the client received elicitation/create');
        assert.match(textOf(r), /User provided the requested information/);
        assert.match(textOf(r), /Name: E2E Tester/);
      });

      test('DELETE ends the session', T, async (t) => {
        if (!needClient(t)) return;
        await assertSessionGone(client, url, gone);
        client = null;
      });
    });
  }

  test('two clients at once get separate sessions', T, async (t) => {
    const url = gw.routeUrl('stdio') ?? gw.routeUrl('everything');
    const [a, b] = await Promise.all([connectClient(url), connectClient(url)]);
    try {
      assert.notEqual(a.mcpTransport.sessionId, b.mcpTransport.sessionId);
      const [ra, rb] = await Promise.all([
        a.callTool({ name: 'echo', arguments: { message: 'from a' } }),
        b.callTool({ name: 'echo', arguments: { message: 'from b' } }),
      ]);
      assert.equal(textOf(ra), 'Echo: from a');
      assert.equal(textOf(rb), 'Echo: from b');
    } finally {
      await a.mcpTransport.terminateSession().catch(() => {});
      await b.mcpTransport.terminateSession().catch(() => {});
      await a.close();
      await b.close();
    }
  });

  test('SIGHUP reload adds a route and keeps the old ones', T, async (t) => {
    if (gw.direct) return t.skip('E2E_DIRECT=1: no gateway');
    gw.updateConfig({
      routes: [
        { name: 'everything', to: ups.http.url },
        { name: 'legacy', to: `sse+${ups.sse.url}` },
        { name: 'stdio', stdio: ups.stdio.stdio },
        { name: 'reloaded', to: ups.http.url },
      ],
    });
    await gw.reload();
    let client;
    for (let i = 0; i < 50 && !client; i++) {
      client = await connectClient(gw.routeUrl('reloaded'), { timeoutMs: 2000 }).catch(() => null);
      if (!client) await sleep(100);
    }
    assert.ok(client, 'the route added by the reload answers within 5 s');
    assert.equal(textOf(await client.callTool({ name: 'echo', arguments: { message: 'reloaded' } })), 'Echo: reloaded');
    await client.mcpTransport.terminateSession().catch(() => {});
    await client.close();
    const old = await connectClient(gw.routeUrl('everything'));
    assert.deepEqual(await old.ping(), {});
    await old.mcpTransport.terminateSession().catch(() => {});
    await old.close();
    assert.ok(gw.alive());
  });

  test('gateway wrote one access-log line per request', async (t) => {
    if (gw.direct) return t.skip('E2E_DIRECT=1: no gateway');
    const lines = gw.accessLog();
    assert.ok(lines.length > 20, `access log has ${lines.length} lines`);
    assert.ok(lines.every((l) => !l.raw), 'every access-log line is JSON');
  });

  test('gateway exits cleanly on SIGTERM', async (t) => {
    if (gw.direct) return t.skip('E2E_DIRECT=1: no gateway');
    await gw.stop();
  });
});

// ---------------------------------------------------------------------------

describe('mcp-sqlite routes', () => {
  let gw;
  let http;
  let stdio;

  before(async () => {
    http = await startSqlite('http', { name: 'sqlite-http' });
    stdio = await startSqlite('stdio');
    gw = await startGateway({
      name: 'gateway-sqlite',
      routes: [
        { name: 'sqlite', to: http.url },
        { name: 'sqlite-stdio', stdio: stdio.stdio },
      ],
    });
  });
  after(async () => {
    await gw?.stop();
    await http?.stop();
  });

  for (const { label, route } of [
    { label: 'Streamable HTTP route', route: 'sqlite' },
    { label: 'stdio route', route: 'sqlite-stdio' },
  ]) {
    describe(label, () => {
      let client;
      let url;
      const marker = `e2e-${route}-${process.pid}-${Date.now()}`;
      const need = (t, withClient = true) => {
        url = gw.routeUrl(route);
        if (!url) { t.skip('E2E_DIRECT=1: route has no direct HTTP equivalent'); return false; }
        if (withClient && !client) { t.skip('no session: initialize failed'); return false; }
        return true;
      };

      test('initialize', T, async (t) => {
        if (!need(t, false)) return;
        client = await connectClient(url);
        assert.ok(client.getServerVersion()?.name, 'serverInfo.name');
        assert.ok(client.getServerCapabilities()?.tools, 'tools capability');
        assert.ok(client.mcpTransport.sessionId, 'Mcp-Session-Id issued');
        assert.deepEqual(await client.ping(), {});
      });

      test('tools/list', T, async (t) => {
        if (!need(t)) return;
        const names = (await client.listTools()).tools.map((x) => x.name);
        for (const n of ['list_tables', 'describe_table', 'query', 'execute', 'slow_count']) {
          assert.ok(names.includes(n), `tool ${n} listed (got ${names.join(', ')})`);
        }
      });

      test('tools/call list_tables, describe_table, execute, query', T, async (t) => {
        if (!need(t)) return;
        const tables = textOf(await client.callTool({ name: 'list_tables', arguments: {} }));
        assert.match(tables, /customers/);
        assert.match(tables, /orders/);
        const desc = textOf(await client.callTool({ name: 'describe_table', arguments: { table: 'customers' } }));
        assert.match(desc, /email/);

        const ddl = await client.callTool({ name: 'execute', arguments: { sql: 'CREATE TABLE IF NOT EXISTS e2e_notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)' } });
        assert.notEqual(ddl.isError, true, textOf(ddl));
        const ins = await client.callTool({ name: 'execute', arguments: { sql: 'INSERT INTO e2e_notes (body) VALUES (?)', params: [marker] } });
        assert.notEqual(ins.isError, true, textOf(ins));
        const q = await client.callTool({ name: 'query', arguments: { sql: 'SELECT body FROM e2e_notes WHERE body = ?', params: [marker] } });
        assert.notEqual(q.isError, true, textOf(q));
        assert.ok(textOf(q).includes(marker), `query result has the inserted row: ${textOf(q)}`);

        const count = await client.callTool({ name: 'query', arguments: { sql: 'SELECT count(*) AS n FROM customers' } });
        assert.notEqual(count.isError, true);
        const bad = await client.callTool({ name: 'query', arguments: { sql: 'SELEC nonsense' } }).catch((e) => e);
        assert.ok(bad instanceof McpError || bad.isError === true, 'bad SQL is an error');
      });

      test('resources: listed and read if offered, otherwise a JSON-RPC error', T, async (t) => {
        if (!need(t)) return;
        if (client.getServerCapabilities()?.resources) {
          const { resources } = await client.listResources();
          if (resources.length) {
            const read = await client.readResource({ uri: resources[0].uri });
            assert.equal(read.contents[0].uri, resources[0].uri);
          }
        } else {
          // No resources capability: the request must still travel and come back as
          // a JSON-RPC error (Method not found), not hang or break the session.
          const e = await client.request({ method: 'resources/list', params: {} }, ListResourcesResultSchema).catch((x) => x);
          assert.ok(e instanceof McpError, `expected a JSON-RPC error, got ${JSON.stringify(e)}`);
          assert.equal(e.code, -32601);
        }
      });

      test('slow_count progress notifications', T, async (t) => {
        if (!need(t)) return;
        const progress = [];
        const r = await client.callTool({ name: 'slow_count', arguments: { steps: 3, interval_ms: 100 } },
          undefined, { onprogress: (p) => progress.push(p), timeout: 15_000 });
        assert.notEqual(r.isError, true, textOf(r));
        assert.match(textOf(r), /3/);
        // (the last one may race the result; see the server-everything progress test)
        assert.ok(progress.length >= 2, `progress: ${JSON.stringify(progress)}`);
        assert.ok(progress.every((p, i) => i === 0 || p.progress > progress[i - 1].progress), 'progress increases');
      });

      test('DELETE ends the session', T, async (t) => {
        if (!need(t)) return;
        await assertSessionGone(client, url, [404]);
        client = null;
      });
    });
  }

  test('gateway exits cleanly on SIGTERM', async (t) => {
    if (gw.direct) return t.skip('E2E_DIRECT=1: no gateway');
    await gw.stop();
  });
});
