// Streaming through mcpgate:
//  1. No buffering: progress notifications of a 5 s tool call reach the client as they
//     are sent (the first one long before the result), on every kind of route.
//  2. Idle streams survive: with every gateway timeout at 1-2 s, a standalone GET SSE
//     stream left idle for 3.5 s still delivers, without the client re-opening it, and
//     tool calls whose events are 2.5 s apart (longer than any timeout) complete.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  connectClient, rawInitialize, recordingFetch, sleep, startEverything, startGateway, startSqlite, textOf,
  waitForNotification, within,
} from './lib/harness.mjs';

/** Calls a tool with a progress token; returns { result, progress: [{p, at}], started, ended }. */
async function timedCall(client, name, args, timeout = 20_000) {
  const progress = [];
  const started = Date.now();
  const result = await client.callTool({ name, arguments: args }, undefined, {
    onprogress: (p) => progress.push({ p, at: Date.now() }), timeout,
  });
  return { result, progress, started, ended: Date.now() };
}

const skipIfNoRoute = (t, url) => {
  if (url) return false;
  t.skip('E2E_DIRECT=1: route has no direct HTTP equivalent');
  return true;
};

describe('no buffering of streamed responses', () => {
  let gw;
  const ups = {};

  before(async () => {
    ups.sqlite = await startSqlite('http', { name: 'sqlite-http' });
    ups.sqliteStdio = await startSqlite('stdio');
    ups.http = await startEverything('streamableHttp', { name: 'everything-http' });
    ups.sse = await startEverything('sse', { name: 'everything-sse' });
    gw = await startGateway({
      name: 'gateway-streaming',
      routes: [
        { name: 'sqlite', to: ups.sqlite.url },
        { name: 'sqlite-stdio', stdio: ups.sqliteStdio.stdio },
        { name: 'everything', to: ups.http.url },
        { name: 'legacy', to: `sse+${ups.sse.url}` },
        { name: 'stdio', stdio: (await startEverything('stdio')).stdio },
      ],
    });
  });
  after(async () => {
    await gw?.stop();
    for (const u of Object.values(ups)) await u?.stop();
  });

  for (const route of ['sqlite', 'sqlite-stdio']) {
    test(`${route}: slow_count progress arrives as it happens`, { timeout: 30_000 }, async (t) => {
      const url = gw.routeUrl(route);
      if (skipIfNoRoute(t, url)) return;
      const client = await connectClient(url);
      try {
        const { result, progress, started, ended } = await timedCall(client, 'slow_count', { steps: 5, interval_ms: 1000 });
        assert.notEqual(result.isError, true, textOf(result));
        assert.ok(progress.length >= 4, `progress notifications: ${progress.length}`);
        const lead = ended - progress[0].at;
        assert.ok(lead > 2500, `first progress came only ${lead} ms before the result (buffered?); ` +
          `offsets: ${progress.map((x) => x.at - started).join(', ')}, result at ${ended - started}`);
      } finally {
        await client.mcpTransport.terminateSession().catch(() => {});
        await client.close();
      }
    });
  }

  for (const route of ['everything', 'legacy', 'stdio']) {
    test(`${route}: trigger-long-running-operation progress arrives as it happens`, { timeout: 30_000 }, async (t) => {
      const url = gw.routeUrl(route);
      if (skipIfNoRoute(t, url)) return;
      const client = await connectClient(url);
      try {
        const { result, progress, started, ended } = await timedCall(client, 'trigger-long-running-operation', { duration: 5, steps: 5 });
        assert.match(textOf(result), /Long running operation completed/);
        assert.ok(progress.length >= 4, `progress notifications: ${progress.length}`);
        const lead = ended - progress[0].at;
        assert.ok(lead > 2500, `first progress came only ${lead} ms before the result (buffered?); ` +
          `offsets: ${progress.map((x) => x.at - started).join(', ')}, result at ${ended - started}`);
      } finally {
        await client.mcpTransport.terminateSession().catch(() => {});
        await client.close();
      }
    });
  }

  test('gateway exits cleanly on SIGTERM', async (t) => {
    if (gw.direct) return t.skip('E2E_DIRECT=1: no gateway');
    await gw.stop();
  });
});

describe('idle streams outlive every gateway timeout', () => {
  // All well under the 2.5-3.5 s of silence below. first_byte is 2 s rather than 1 s so
  // that a loaded machine's slow legacy-SSE upstream answers are not 504s.
  const TIMEOUTS = { idle: '1s', first_byte: '2s', request_header: '1s', request_body: '1s', drain: '3s' };
  const IDLE_MS = 3500;
  let gw;
  const ups = {};

  before(async () => {
    ups.http = await startEverything('streamableHttp', { name: 'idle-everything-http' });
    ups.sse = await startEverything('sse', { name: 'idle-everything-sse' });
    ups.sqlite = await startSqlite('http', { name: 'idle-sqlite-http' });
    gw = await startGateway({
      name: 'gateway-idle',
      extra: { timeouts: TIMEOUTS },
      routes: [
        { name: 'everything', to: ups.http.url },
        { name: 'legacy', to: `sse+${ups.sse.url}` },
        { name: 'stdio', stdio: (await startEverything('stdio')).stdio },
        { name: 'sqlite', to: ups.sqlite.url },
      ],
    });
  });
  after(async () => {
    await gw?.stop();
    for (const u of Object.values(ups)) await u?.stop();
  });

  for (const route of ['everything', 'legacy', 'stdio']) {
    test(`${route}: standalone GET stream idle for ${IDLE_MS} ms still delivers`, { timeout: 30_000 }, async (t) => {
      const url = gw.routeUrl(route);
      if (skipIfNoRoute(t, url)) return;
      const rec = recordingFetch();
      // No automatic re-opening: if the gateway cut the idle stream, the test must see it.
      const client = await connectClient(url, {
        fetch: rec.fetch,
        reconnectionOptions: { maxRetries: 0, initialReconnectionDelay: 100, maxReconnectionDelay: 100, reconnectionDelayGrowFactor: 1 },
      });
      const gets = () => rec.calls.filter((c) => c.method === 'GET');
      try {
        await within(5000, (async () => { while (!gets().length) await sleep(25); })(), 'the client opening its GET stream');
        await sleep(IDLE_MS);
        await client.setLoggingLevel('debug');
        const before = client.notifications.length;
        // Sends one notifications/message at once; it is related to no request, so it
        // can only travel on the standalone GET stream.
        await client.callTool({ name: 'toggle-simulated-logging', arguments: {} });
        try {
          await waitForNotification(client, (n) => n.method === 'notifications/message' && client.notifications.indexOf(n) >= before,
            { timeoutMs: 4000, what: 'notifications/message on the idle GET stream' });
        } finally {
          await client.callTool({ name: 'toggle-simulated-logging', arguments: {} });
        }
        assert.equal(gets().length, 1, 'the GET stream was opened exactly once (never cut and re-opened)');
      } finally {
        await client.mcpTransport.terminateSession().catch(() => {});
        await client.close();
      }
    });

    test(`${route}: tool call with 2.5 s between events completes`, { timeout: 30_000 }, async (t) => {
      const url = gw.routeUrl(route);
      if (skipIfNoRoute(t, url)) return;
      const client = await connectClient(url);
      try {
        const { result, progress } = await timedCall(client, 'trigger-long-running-operation', { duration: 5, steps: 2 });
        assert.match(textOf(result), /Long running operation completed/);
        assert.ok(progress.length >= 1, 'progress arrived');
        assert.deepEqual(await client.ping(), {}, 'session still usable');
      } finally {
        await client.mcpTransport.terminateSession().catch(() => {});
        await client.close();
      }
    });
  }

  test('sqlite: slow_count with 2.5 s between events completes', { timeout: 30_000 }, async (t) => {
    const url = gw.routeUrl('sqlite');
    // first_byte bounds the wait for the upstream's response head. If mcp-sqlite sent
    // its head only with its first event (2.5 s in), the 2 s first_byte would rightly
    // end the call: check the upstream directly first.
    const s = await rawInitialize(ups.sqlite.url);
    const t0 = Date.now();
    const ac = new AbortController();
    const res = await fetch(ups.sqlite.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json', accept: 'application/json, text/event-stream',
        'mcp-session-id': s.sessionId, 'mcp-protocol-version': s.protocolVersion,
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'slow_count', arguments: { steps: 1, interval_ms: 1500 }, _meta: { progressToken: 'p' } } }),
      signal: AbortSignal.any([ac.signal, AbortSignal.timeout(10_000)]),
    });
    const headMs = Date.now() - t0;
    ac.abort();
    await res.body?.cancel().catch(() => {});
    if (headMs > 900) return t.skip(`mcp-sqlite sends its response head only after ${headMs} ms`);
    if (skipIfNoRoute(t, url)) return;

    const client = await connectClient(url);
    try {
      const { result, progress } = await timedCall(client, 'slow_count', { steps: 3, interval_ms: 2500 });
      assert.notEqual(result.isError, true, textOf(result));
      assert.ok(progress.length >= 2, `progress notifications: ${progress.length}`);
    } finally {
      await client.mcpTransport.terminateSession().catch(() => {});
      await client.close();
    }
  });

  test('gateway exits cleanly on SIGTERM', async (t) => {
    if (gw.direct) return t.skip('E2E_DIRECT=1: no gateway');
    await gw.stop();
  });
});
