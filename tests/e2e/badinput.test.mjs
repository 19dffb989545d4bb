// Hostile and broken input against mcpgate, with curl and raw sockets: size limits,
// request smuggling shapes, malformed framing and header syntax, slow clients,
// clients and upstreams that vanish mid-stream, foreign Host and Origin. Nothing
// malformed may reach an upstream, and the gateway must keep serving throughout,
// answer /metrics, and exit cleanly on SIGTERM without a sanitizer report.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  connectClient, curl, curlStatus, rawHttp, rawInitialize, rawStream, sleep, startEverything, startGateway, startSqlite,
  textOf, tmpDir, within, DIRECT, LATEST_PROTOCOL,
} from './lib/harness.mjs';

const LIMITS = { max_body_bytes: 65536, max_header_bytes: 8192 };
const TIMEOUTS = { idle: '10s', first_byte: '10s', request_header: '1s', request_body: '1s', drain: '3s' };
const T = { timeout: 20_000 };

describe('bad input', { skip: DIRECT && 'E2E_DIRECT=1: these tests are about the gateway itself' }, () => {
  let gw;
  let everything;
  let sqlite;
  let doomed;
  let host;
  let sess; // an initialized mcp-sqlite session, so that a forwarded request would succeed
  const tmp = tmpDir('mcpgate-badinput-');

  /** Bytes of a request head (CRLF line ends unless lines already carry their own). */
  const head = (lines) => lines.join('\r\n') + '\r\n\r\n';
  const ping = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' });
  const initBody = (pad = '') => JSON.stringify({
    jsonrpc: '2.0', id: 1, method: 'initialize',
    params: { protocolVersion: LATEST_PROTOCOL, capabilities: {}, clientInfo: { name: `e2e-raw${pad}`, version: '1.0.0' } },
  });
  const mcpHeaders = ['Content-Type: application/json', 'Accept: application/json, text/event-stream'];
  // Every malformed request below carries a valid session and a ping, so that if the
  // gateway forwarded it, mcp-sqlite would answer 200 and log it: a 400 can only be the
  // gateway's own.
  const sessionHeaders = () => [`Mcp-Session-Id: ${sess.sessionId}`, `Mcp-Protocol-Version: ${sess.protocolVersion}`];
  const pings = () => sqlite.messageLog().filter((m) => m.method === 'ping').length;
  const sqliteHead = (extra) => ['POST /sqlite HTTP/1.1', `Host: ${host}`, ...mcpHeaders, ...sessionHeaders(), ...extra];

  /** A malformed request must get 400, the connection must close, and nothing may reach mcp-sqlite. */
  async function assertRejected400(bytes, what) {
    const before = pings();
    const r = await rawHttp(gw.port, bytes, { timeoutMs: 4000 });
    await sleep(100);
    assert.equal(pings(), before, `${what}: forwarded to the upstream (answer ${r.status}: ${JSON.stringify(r.body.slice(0, 150))})`);
    assert.equal(r.status, 400, `${what}: expected 400, got ${r.status ?? 'no response'} (${JSON.stringify(r.raw.slice(0, 200))})`);
    assert.ok(r.closed, `${what}: connection must be closed after the 400`);
    assert.ok(r.closedAfterMs < 1500, `${what}: closed only after ${r.closedAfterMs} ms`);
    assert.ok(gw.alive(), 'gateway still running');
  }

  before(async () => {
    everything = await startEverything('streamableHttp', { name: 'everything-http' });
    sqlite = await startSqlite('http', { name: 'sqlite-http' });
    doomed = await startSqlite('http', { name: 'sqlite-doomed' });
    gw = await startGateway({
      name: 'gateway-badinput',
      extra: { limits: LIMITS, timeouts: TIMEOUTS },
      routes: [
        { name: 'everything', to: everything.url },
        { name: 'sqlite', to: sqlite.url },
        { name: 'doomed', to: doomed.url },
      ],
    });
    host = `127.0.0.1:${gw.port}`;
    sess = await rawInitialize(gw.routeUrl('sqlite'));
  });
  after(async () => {
    await gw?.stop();
    await everything?.stop();
    await sqlite?.stop();
    await doomed?.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  test('baseline: a well-formed raw request is proxied', T, async () => {
    const body = initBody();
    const r = await rawHttp(gw.port, head(['POST /everything HTTP/1.1', `Host: ${host}`, ...mcpHeaders,
      `Content-Length: ${body.length}`]) + body, { untilClose: false, timeoutMs: 5000 });
    assert.equal(r.status, 200, r.raw.slice(0, 300));
    assert.match(r.raw, /mcp-session-id:/i);

    // The control for every rejection test below: the same ping, well-formed, reaches
    // mcp-sqlite (and shows in its log) and succeeds.
    const before = pings();
    const ok = await rawHttp(gw.port, head(['POST /sqlite HTTP/1.1', `Host: ${host}`, ...mcpHeaders, ...sessionHeaders(),
      `Content-Length: ${ping.length}`]) + ping, { untilClose: false, timeoutMs: 5000 });
    assert.equal(ok.status, 200, ok.raw.slice(0, 300));
    await sleep(100);
    assert.equal(pings(), before + 1, 'the well-formed ping reached mcp-sqlite');
    const chunked = await rawHttp(gw.port, head(['POST /sqlite HTTP/1.1', `Host: ${host}`, ...mcpHeaders, ...sessionHeaders(),
      'Transfer-Encoding: chunked']) + `${ping.length.toString(16)}\r\n${ping}\r\n0\r\n\r\n`, { untilClose: false, timeoutMs: 5000 });
    assert.equal(chunked.status, 200, `well-formed chunked ping: ${chunked.raw.slice(0, 300)}`);
  });

  // ---- size limits ----

  test('oversized request headers: 431', T, async () => {
    const big = 'a'.repeat(10_000);
    assert.equal(await curlStatus(['-X', 'POST', '-H', `X-Big: ${big}`, '-H', 'Content-Type: application/json',
      '--data-binary', ping, `${gw.url}/everything`]), 431);
    const many = Array.from({ length: 200 }, (_, i) => `X-Header-${i}: ${'v'.repeat(60)}`);
    const r = await rawHttp(gw.port, head(['GET /everything HTTP/1.1', `Host: ${host}`, ...many]), { timeoutMs: 4000 });
    assert.equal(r.status, 431, r.raw.slice(0, 200));
    assert.ok(gw.alive());
  });

  test('oversized body (Content-Length): 413; just under the limit: accepted', T, async () => {
    const file = path.join(tmp, 'big.json');
    fs.writeFileSync(file, initBody('x'.repeat(100_000)));
    assert.equal(await curlStatus(['-X', 'POST', '-H', 'Content-Type: application/json',
      '-H', 'Accept: application/json, text/event-stream', '--data-binary', `@${file}`, `${gw.url}/everything`]), 413);
    fs.writeFileSync(file, initBody('x'.repeat(60_000)));
    const ok = await curlStatus(['-X', 'POST', '-H', 'Content-Type: application/json',
      '-H', 'Accept: application/json, text/event-stream', '--data-binary', `@${file}`, `${gw.url}/everything`]);
    assert.equal(ok, 200, 'a 60 KB initialize is under the 64 KiB limit');
  });

  test('oversized body (chunked): 413', T, async () => {
    const chunk = 'x'.repeat(16_384);
    const chunks = Array.from({ length: 6 }, () => `${chunk.length.toString(16)}\r\n${chunk}\r\n`).join('');
    const r = await rawHttp(gw.port, head(['POST /sqlite HTTP/1.1', `Host: ${host}`, ...mcpHeaders, ...sessionHeaders(),
      'Transfer-Encoding: chunked']) + chunks + '0\r\n\r\n', { timeoutMs: 4000 });
    assert.equal(r.status, 413, r.raw.slice(0, 200));
  });

  // ---- framing ----

  // Each case: a complete request to /sqlite (valid session, ping body) made malformed
  // in one way. The gateway must answer 400 itself and close; nothing may be forwarded.
  const REJECT_400 = [
    // -- framing (request smuggling shapes) --
    ['Content-Length together with Transfer-Encoding', () => {
      // The body smuggles a second request behind a zero-length chunk.
      const smuggled = `0\r\n\r\nPOST /sqlite HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\n` +
        `${sessionHeaders().join('\r\n')}\r\nContent-Length: ${ping.length}\r\n\r\n${ping}`;
      return head(sqliteHead([`Content-Length: ${smuggled.length}`, 'Transfer-Encoding: chunked'])) + smuggled;
    }],
    ['two different Content-Length headers', () =>
      head(sqliteHead([`Content-Length: ${ping.length}`, `Content-Length: ${ping.length + 1}`])) + ping + ' '],
    ['a Content-Length list with different values', () =>
      head(sqliteHead([`Content-Length: ${ping.length}, ${ping.length + 1}`])) + ping + ' '],
    ['a non-numeric Content-Length', () => head(sqliteHead(['Content-Length: 2x'])) + ping],
    ['a non-hex chunk size', () => head(sqliteHead(['Transfer-Encoding: chunked'])) + `zz\r\n${ping}\r\n0\r\n\r\n`],
    ['a negative chunk size', () => head(sqliteHead(['Transfer-Encoding: chunked'])) + `-5\r\n${ping}\r\n0\r\n\r\n`],
    ['chunk data longer than its size', () =>
      head(sqliteHead(['Transfer-Encoding: chunked'])) + `${ping.length.toString(16)}\r\n${ping}XX\r\n0\r\n\r\n`],
    ['chunk data not followed by CRLF', () =>
      head(sqliteHead(['Transfer-Encoding: chunked'])) + `${ping.length.toString(16)}\r\n${ping}XX0\r\n\r\n`],
    ['a chunk size that overflows 64 bits', () =>
      head(sqliteHead(['Transfer-Encoding: chunked'])) + `1${'0'.repeat(20)}\r\n${ping}\r\n0\r\n\r\n`],
    ['Transfer-Encoding: chunked twice', () =>
      head(sqliteHead(['Transfer-Encoding: chunked', 'Transfer-Encoding: chunked'])) + `${ping.length.toString(16)}\r\n${ping}\r\n0\r\n\r\n`],
    // -- header syntax (RFC 9112 §5, §2.2) --
    ['obs-fold (a header continued on the next line)', () =>
      head(sqliteHead([`Content-Length: ${ping.length}`, 'X-Folded: first', ' continued'])) + ping],
    ['bare LF line ends', () => sqliteHead([`Content-Length: ${ping.length}`]).join('\n') + '\n\n' + ping],
    ['a control character in a header name', () => head(sqliteHead([`Content-Length: ${ping.length}`, 'X-Bad\x01Name: v'])) + ping],
    ['NUL in a header value', () => head(sqliteHead([`Content-Length: ${ping.length}`, 'X-Bad-Value: a\x00b'])) + ping],
    ['whitespace between a header name and the colon', () => head(sqliteHead([`Content-Length: ${ping.length}`, 'X-Space : v'])) + ping],
    ['a space inside a header name', () => head(sqliteHead([`Content-Length: ${ping.length}`, 'Bad Name: v'])) + ping],
    ['a header line without a colon', () => head(sqliteHead([`Content-Length: ${ping.length}`, 'NoColonHere'])) + ping],
    ['two Host headers', () => head(sqliteHead([`Content-Length: ${ping.length}`, `Host: ${host}`])) + ping],
  ];
  for (const [what, build] of REJECT_400) {
    test(`${what}: 400, closed, not forwarded`, T, async () => {
      await assertRejected400(build(), what);
    });
  }

  test('Transfer-Encoding other than chunked: 400 or 501, not forwarded', T, async () => {
    const before = pings();
    const r = await rawHttp(gw.port, head(sqliteHead(['Transfer-Encoding: gzip, chunked'])) +
      `${ping.length.toString(16)}\r\n${ping}\r\n0\r\n\r\n`, { timeoutMs: 4000 });
    await sleep(100);
    assert.equal(pings(), before, `forwarded to the upstream (answer ${r.status})`);
    assert.ok([400, 501].includes(r.status), `TE gzip,chunked: ${r.status}`);
  });

  test('request line garbage: 400', T, async () => {
    const r = await rawHttp(gw.port, 'GARBAGE\r\n\r\n', { timeoutMs: 4000 });
    assert.equal(r.status, 400, JSON.stringify(r.raw.slice(0, 100)));
    const r2 = await rawHttp(gw.port, head(['GET /everything HTTP/9.9', `Host: ${host}`]), { timeoutMs: 4000 });
    assert.ok(r2.status === 400 || r2.status === 505 || (r2.status === null && r2.closed), `HTTP/9.9: ${r2.status}`);
  });

  // ---- slow and vanishing clients ----

  test('headers sent byte by byte slower than request_header: connection closed', T, async () => {
    const bytes = [...`GET /everything HTTP/1.1\r\nHost: ${host}\r\nX-Slow: ${'s'.repeat(40)}\r\n\r\n`];
    const r = await rawHttp(gw.port, bytes, { delayMs: 150, timeoutMs: 8000 });
    assert.ok(r.closed, 'the gateway closed the slow connection');
    assert.ok(r.closedAfterMs < 4000, `closed after ${r.closedAfterMs} ms (request_header is 1 s)`);
    assert.ok(r.status === null || r.status === 408, `status ${r.status}`);
  });

  test('body stalled past request_body: connection closed', T, async () => {
    const r = await rawHttp(gw.port, head(['POST /everything HTTP/1.1', `Host: ${host}`, ...mcpHeaders,
      'Content-Length: 1000']) + '{"jsonrpc":', { timeoutMs: 8000 });
    assert.ok(r.closed, 'the gateway closed the stalled connection');
    assert.ok(r.closedAfterMs < 4000, `closed after ${r.closedAfterMs} ms (request_body is 1 s)`);
    assert.ok(r.status === null || r.status === 408, `status ${r.status}`);
  });

  test('client vanishes mid-SSE-stream: the gateway serves the next request', T, async () => {
    const url = gw.routeUrl('sqlite');
    const s = await rawInitialize(url);
    const body = JSON.stringify({
      jsonrpc: '2.0', id: 2, method: 'tools/call',
      params: { name: 'slow_count', arguments: { steps: 10, interval_ms: 300 }, _meta: { progressToken: 'vanish' } },
    });
    const st = await rawStream(gw.port, head(['POST /sqlite HTTP/1.1', `Host: ${host}`, ...mcpHeaders,
      `Mcp-Session-Id: ${s.sessionId}`, `Mcp-Protocol-Version: ${s.protocolVersion}`, `Content-Length: ${body.length}`]) + body);
    await st.waitFor(/notifications\/progress/, 5000);
    st.vanish();
    await sleep(500);
    assert.ok(gw.alive(), 'gateway still running');
    const client = await connectClient(url);
    try {
      assert.match(textOf(await client.callTool({ name: 'list_tables', arguments: {} })), /customers/);
      // The abandoned call ran to its end or was cancelled; either way the old session is usable.
      const again = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream',
          'mcp-session-id': s.sessionId, 'mcp-protocol-version': s.protocolVersion },
        body: JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'ping' }),
        signal: AbortSignal.timeout(5000),
      });
      assert.equal(again.status, 200);
      await again.text();
    } finally {
      await client.mcpTransport.terminateSession().catch(() => {});
      await client.close();
    }
  });

  test('upstream dies mid-stream: the client gets a clean end or error, the gateway stays up', T, async (t) => {
    const url = gw.routeUrl('doomed');
    const s = await rawInitialize(url);
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream',
        'mcp-session-id': s.sessionId, 'mcp-protocol-version': s.protocolVersion },
      body: JSON.stringify({
        jsonrpc: '2.0', id: 2, method: 'tools/call',
        params: { name: 'slow_count', arguments: { steps: 40, interval_ms: 250 }, _meta: { progressToken: 'doom' } },
      }),
      signal: AbortSignal.timeout(15_000),
    });
    assert.equal(res.status, 200);
    const reader = res.body.getReader();
    const dec = new TextDecoder();
    let seen = '';
    while (!/notifications\/progress/.test(seen)) {
      const { value, done } = await within(5000, reader.read(), 'first progress event');
      assert.ok(!done, `stream ended before any progress: ${seen}`);
      seen += dec.decode(value, { stream: true });
    }
    await doomed.kill('SIGKILL');
    // The response must now end (cleanly, possibly after a JSON-RPC error event) or
    // fail; what it must not do is hang.
    const outcome = await within(8000, (async () => {
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return 'end';
          seen += dec.decode(value, { stream: true });
        }
      } catch (e) {
        return `error: ${e.cause?.code ?? e.message}`;
      }
    })(), 'the response to end after the upstream died');
    t.diagnostic(`stream outcome after the upstream died: ${outcome}; last bytes: ${seen.slice(-200).replace(/\s+/g, ' ')}`);
    assert.ok(!/"result"/.test(seen.split('notifications/progress').pop()), 'no made-up result after the upstream died');
    assert.ok(gw.alive(), 'gateway still running');

    // The dead route answers promptly with a gateway error; other routes still work.
    const r = await within(8000, fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: initBody(),
      signal: AbortSignal.timeout(8000),
    }), 'request to the dead upstream');
    assert.ok(r.status >= 502 && r.status <= 504, `dead upstream: HTTP ${r.status}`);
    await r.text();
    const c = await connectClient(gw.routeUrl('everything'));
    assert.deepEqual(await c.ping(), {});
    await c.mcpTransport.terminateSession().catch(() => {});
    await c.close();
  });

  // ---- Host and Origin ----

  // A ping in the live mcp-sqlite session, sent with curl; extra args set Host / Origin.
  const curlPing = (extra, target = `${gw.url}/sqlite`) => curlStatus(['-X', 'POST',
    '-H', 'Content-Type: application/json', '-H', 'Accept: application/json, text/event-stream',
    ...sessionHeaders().flatMap((h) => ['-H', h]), '--data-binary', ping, ...extra, target]);

  // The brief for these tests says 404 for a Host that names no route; docs/errors.md
  // says 403 ("host not allowed", DNS-rebinding protection). Either refuses; what
  // matters is that nothing is forwarded.
  const HOST_REFUSED = [403, 404];

  test('unknown Host: refused (403/404), not forwarded', T, async () => {
    const before = pings();
    for (const h of ['evil.example.com', `127.0.0.1:${gw.port === 65535 ? 1 : gw.port + 1}`, `localhost:${gw.port}`,
      `[::1]:${gw.port}`, `127.0.0.1:${gw.port}.evil.example.com`]) {
      const status = await curlPing(['-H', `Host: ${h}`]);
      // The last one is not even a valid host:port; 400 is right for it too.
      const ok = h.endsWith('.evil.example.com') ? [400, ...HOST_REFUSED] : HOST_REFUSED;
      assert.ok(ok.includes(status), `Host: ${h} -> ${status} (the route's host is 127.0.0.1:${gw.port})`);
    }
    await sleep(100);
    assert.equal(pings(), before, 'nothing reached the upstream');
    assert.equal(await curlPing([]), 200, 'control: the right Host is served');
  });

  test('no route for the path: 404; no Host at all: 400', T, async () => {
    assert.equal(await curlPing([], `${gw.url}/no-such-route`), 404);
    assert.equal(await curlPing([], `${gw.url}/sqlitex`), 404, 'a route prefix matches whole path segments only');
    const r = await rawHttp(gw.port, head(['GET /sqlite HTTP/1.1']), { timeoutMs: 4000 });
    assert.equal(r.status, 400, `HTTP/1.1 request without Host (RFC 9112 §3.2): ${r.status}`);
  });

  test('bad Origin: 403, not forwarded; the route\'s own Origin: accepted', T, async () => {
    const before = pings();
    for (const o of ['http://evil.example.com', 'null', `http://127.0.0.1:${gw.port}.evil.example.com`,
      `https://127.0.0.1:${gw.port}`, `http://localhost:${gw.port}`, `http://127.0.0.1:${gw.port === 65535 ? 1 : gw.port + 1}`]) {
      assert.equal(await curlPing(['-H', `Origin: ${o}`]), 403, `Origin: ${o}`);
    }
    await sleep(100);
    assert.equal(pings(), before, 'nothing reached the upstream');
    assert.equal(await curlPing(['-H', `Origin: ${gw.url}`]), 200, 'the route\'s own origin is accepted');
  });

  // ---- after all of it ----

  test('after all of the above: /metrics answers, the gateway exits cleanly on SIGTERM', T, async () => {
    assert.ok(gw.alive(), 'gateway still running');
    const m = await curl(['-i', gw.metricsUrl]);
    assert.match(m.stdout, /^HTTP\/1\.1 200/, m.stdout.slice(0, 200) + m.stderr);
    assert.ok(m.stdout.split('\r\n\r\n').slice(1).join('').trim().length > 0, 'metrics body is not empty');
    const c = await connectClient(gw.routeUrl('everything'));
    assert.equal(textOf(await c.callTool({ name: 'echo', arguments: { message: 'still here' } })), 'Echo: still here');
    await c.mcpTransport.terminateSession().catch(() => {});
    await c.close();
    await gw.stop();
  });
});
