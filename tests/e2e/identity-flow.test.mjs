// The whole MCP authorization flow with real processes, on each identity store (SQLite,
// then PostgreSQL from scripts/pg; skipped with the reason when it is not there):
//   - the official SDK client (unmodified, through lib/oauth-client.mjs's provider and the
//     form browser) against a route behind sign-in in front of mcp-sqlite: 401, RFC 9728
//     and RFC 8414 discovery, RFC 7591 registration, authorize with PKCE, the built-in
//     sign-in form (an account made with `mcpgate users add`), consent, the code, MCP
//     calls; the access token expires (access_token_ttl 2s), the SDK refreshes on the
//     401 and goes on; revocation ends it. The access log names the user, the method,
//     the client and the token.
//   - refusals that touch the store: code replay (the first exchange's tokens die too),
//     refresh-token reuse (the family dies: the newest access token is refused), expired
//     and revoked tokens (on every worker).
//   - kill -9 right after a token is issued, restart on the same state: the token and
//     its refresh token still work.
//   - the CLI writing beside the running gateway (users add) leaves the gateway's own
//     writes visible (`tokens list --json` has the tokens it then issues).
// Then, on PostgreSQL only: two instances on one database (a token from A works on B;
// a revocation through A's endpoint, then through the CLI, is refused by B within 1 s),
// and the store stopping under a running gateway (503 within 3 s, nothing reaches the
// upstream).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  DIRECT, freePort, postgresUnavailable, sleep, startPostgres, startSqlite, textOf, tmpDir, toYaml,
} from './lib/harness.mjs';
import { Browser } from './lib/browser.mjs';
import { TestOAuthClientProvider, UnauthorizedError, connectWithOAuth, formUserAgent } from './lib/oauth-client.mjs';
import {
  addUser, browserAuthorize, callRoute, cliOk, exchangeCode, killHard, obtainTokens, pollUntil, refreshToken,
  registerClient, revokeToken, startIdentityGateway, stateDir, tokenId, waitLogLine,
} from './lib/identity.mjs';

const T = { timeout: 60_000 };
const TTL_MS = 2000;
const ANN = { email: 'ann@example.com', password: 'correct horse battery', groups: ['eng'] };


/** A configuration file for the CLI alone (no gateway running): this state, this store. */
function offlineConfig(dir, store) {
  const file = path.join(tmpDir('mcpgate-cli-'), 'mcpgate.yaml');
  fs.writeFileSync(file, toYaml({
    state_dir: dir,
    ...(store ? { store } : {}),
    routes: [{ name: 'none', from: 'http://127.0.0.1:9/none', to: 'http://127.0.0.1:9/mcp', allow_public_unauthenticated_access: false }],
  }));
  return file;
}

// One PostgreSQL cluster for the file, started on first use.
let pg;
let pgStarting;
function postgres() {
  pgStarting ??= startPostgres({ name: 'postgres-identity' }).then((p) => { pg = p; return p; });
  return pgStarting;
}
after(async () => { await pg?.stop(); });

const STORES = [
  { kind: 'sqlite', why: () => (DIRECT ? 'E2E_DIRECT=1: needs the gateway' : null), store: async () => 'sqlite' },
  {
    kind: 'postgres',
    why: () => (DIRECT ? 'E2E_DIRECT=1: needs the gateway' : postgresUnavailable()),
    store: async () => ({ postgres: (await postgres()).dsn }),
  },
];

for (const S of STORES) {
  describe(`identity on the ${S.kind} store`, { skip: S.why() ?? false }, () => {
    let upstream;
    let flow; // access_token_ttl 2s
    let plain; // default ttl, same store
    let redirectUri;

    before(async () => {
      redirectUri = `http://127.0.0.1:${await freePort()}/callback`;
      const store = await S.store();
      upstream = await startSqlite('http', { name: `${S.kind}-sqlite` });
      flow = await startIdentityGateway({ name: `${S.kind}-flow`, upstream, store, oauth: { access_token_ttl: '2s' } });
      plain = await startIdentityGateway({ name: `${S.kind}-plain`, upstream, store });
      // The CLI writes to the store the gateway reads (for SQLite: each its own file).
      await addUser(flow.config, ANN.email, ANN.password, { groups: ANN.groups });
      if (S.kind === 'sqlite') await addUser(plain.config, ANN.email, ANN.password, { groups: ANN.groups });
    });
    after(async () => {
      try {
        await flow?.gw.stop();
        await plain?.gw.stop();
      } finally {
        await upstream?.stop();
      }
    });

    test('the SDK client: sign-in, MCP calls, refresh on expiry, revocation', T, async () => {
      const url = flow.url('sql');
      const issuer = flow.issuer;
      const browser = new Browser();
      const provider = await TestOAuthClientProvider.create({
        userAgent: formUserAgent(browser, { email: ANN.email, password: ANN.password }),
        clientName: `sdk-${S.kind}`,
      });
      const { client, signedIn } = await connectWithOAuth(url, provider);
      try {
        assert.equal(signedIn, true);
        // What the SDK did: discovery, registration, one authorization with PKCE S256.
        assert.equal(provider.registrations.length, 1);
        const clientId = provider.clientInformation().client_id;
        assert.ok(clientId);
        assert.equal(provider.authorizationUrls.length, 1);
        const az = provider.authorizationUrls[0];
        assert.equal(`${az.origin}${az.pathname}`, `${issuer}/_mcpgate/oauth/authorize`);
        assert.equal(az.searchParams.get('code_challenge_method'), 'S256');
        assert.equal(az.searchParams.get('resource'), url);
        assert.equal(az.searchParams.get('client_id'), clientId);
        assert.equal(provider.callbacks[0].iss, issuer);
        // The browser went authorize -> sign-in -> consent -> redirect_uri.
        const paths = browser.history.map((h) => new URL(h.url).pathname);
        assert.deepEqual([...new Set(paths)], ['/_mcpgate/oauth/authorize', '/_mcpgate/signin', '/_mcpgate/consent']);

        const tools = await client.listTools();
        assert.ok(tools.tools.some((x) => x.name === 'query'), JSON.stringify(tools.tools.map((x) => x.name)));
        const q = await client.callTool({ name: 'query', arguments: { sql: 'select count(*) as n from customers' } });
        assert.notEqual(q.isError, true, textOf(q));
        assert.equal(q.structuredContent?.row_count, 1);

        const first = provider.tokens();
        assert.match(first.access_token, /^mcpg_at_/);
        assert.match(first.refresh_token, /^mcpg_rt_/);
        const line = await waitLogLine(flow.gw, (l) => l.route === 'sql' && l.status === 200 && l.token_id === tokenId(first.access_token));
        assert.equal(line.user, `user:${ANN.email}`);
        assert.equal(line.auth, 'oauth');
        assert.equal(line.client_id, clientId);

        // Expiry: the route refuses the old token, the SDK refreshes and goes on.
        const saved = provider.savedTokens.length;
        await sleep(TTL_MS + 400);
        const expired = await callRoute(url, first.access_token);
        assert.equal(expired.status, 401, expired.text.slice(0, 200));
        assert.equal(expired.challenge?.params.error, 'invalid_token');
        const again = await client.callTool({ name: 'list_tables', arguments: {} });
        assert.notEqual(again.isError, true, textOf(again));
        assert.equal(provider.savedTokens.length, saved + 1, 'one refresh');
        const second = provider.tokens();
        assert.notEqual(second.access_token, first.access_token);
        assert.match(second.refresh_token, /^mcpg_rt_/);
        assert.notEqual(second.refresh_token, first.refresh_token, 'the refresh token rotates');
        assert.equal(provider.authorizationUrls.length, 1, 'no new sign-in');
        await waitLogLine(flow.gw, (l) => l.status === 200 && l.token_id === tokenId(second.access_token) && l.user === `user:${ANN.email}`);

        // Revocation: the access token at once, on every worker; then the refresh token,
        // after which the SDK cannot go on without a new sign-in.
        const rv = await revokeToken(issuer, { token: second.access_token, clientId });
        assert.equal(rv.status, 200, rv.text);
        for (let i = 0; i < 4; i++) {
          const r = await callRoute(url, second.access_token);
          assert.equal(r.status, 401, `request ${i} after revocation: ${r.text.slice(0, 200)}`);
          assert.equal(r.challenge?.params.error, 'invalid_token');
        }
        const rv2 = await revokeToken(issuer, { token: second.refresh_token, clientId, hint: 'refresh_token' });
        assert.equal(rv2.status, 200, rv2.text);
        const rr = await refreshToken(issuer, { refreshToken: second.refresh_token, clientId, resource: url });
        assert.equal(rr.status, 400, rr.text);
        assert.equal(rr.json?.error, 'invalid_grant');
        provider.userAgent = undefined; // a new sign-in would need a person
        await assert.rejects(client.listTools(), (e) => e instanceof UnauthorizedError || /401|Unauthorized/.test(e.message));
        assert.equal(provider.authorizationUrls.length, 2, 'the SDK had to start a new authorization');
      } finally {
        await client.close().catch(() => {});
      }
    });

    test('code replay: invalid_grant, and the tokens of the first exchange are revoked', T, async () => {
      const base = plain.issuer;
      const client = await registerClient(base, { redirectUris: [redirectUri] });
      const a = await browserAuthorize(base, { clientId: client.client_id, redirectUri, resource: plain.url('sql'), email: ANN.email, password: ANN.password });
      const ex = { code: a.code, verifier: a.verifier, clientId: client.client_id, redirectUri, resource: plain.url('sql') };
      const t1 = await exchangeCode(base, ex);
      assert.equal(t1.status, 200, t1.text);
      assert.equal((await callRoute(plain.url('sql'), t1.json.access_token)).status, 200);
      const t2 = await exchangeCode(base, ex);
      assert.equal(t2.status, 400, t2.text);
      assert.equal(t2.json?.error, 'invalid_grant');
      const r = await callRoute(plain.url('sql'), t1.json.access_token);
      assert.equal(r.status, 401, 'the access token from the first exchange is revoked');
      assert.equal(r.challenge?.params.error, 'invalid_token');
      const rf = await refreshToken(base, { refreshToken: t1.json.refresh_token, clientId: client.client_id, resource: plain.url('sql') });
      assert.equal(rf.status, 400, rf.text);
      assert.equal(rf.json?.error, 'invalid_grant');
    });

    test('refresh-token reuse: invalid_grant, and the whole family is revoked', T, async () => {
      const base = plain.issuer;
      const url = plain.url('sql');
      const { tokens: t1, clientId } = await obtainTokens(base, { resource: url, email: ANN.email, password: ANN.password, redirectUri });
      const r2 = await refreshToken(base, { refreshToken: t1.refresh_token, clientId, resource: url });
      assert.equal(r2.status, 200, r2.text);
      const t2 = r2.json;
      assert.notEqual(t2.refresh_token, t1.refresh_token);
      assert.equal((await callRoute(url, t2.access_token)).status, 200);
      const reuse = await refreshToken(base, { refreshToken: t1.refresh_token, clientId, resource: url });
      assert.equal(reuse.status, 400, reuse.text);
      assert.equal(reuse.json?.error, 'invalid_grant');
      for (const [what, tok] of [['the newest access token', t2.access_token], ['the first access token', t1.access_token]]) {
        const r = await callRoute(url, tok);
        assert.equal(r.status, 401, `${what}: ${r.text.slice(0, 200)}`);
        assert.equal(r.challenge?.params.error, 'invalid_token');
      }
      const r3 = await refreshToken(base, { refreshToken: t2.refresh_token, clientId, resource: url });
      assert.equal(r3.status, 400, r3.text);
      assert.equal(r3.json?.error, 'invalid_grant');
    });

    test('expired and revoked access tokens: 401 invalid_token on every worker', T, async () => {
      const { tokens } = await obtainTokens(flow.issuer, {
        resource: flow.url('sql'), email: ANN.email, password: ANN.password, redirectUri,
      });
      const issuedAt = Date.now();
      assert.equal((await callRoute(flow.url('sql'), tokens.access_token)).status, 200);
      await sleep(Math.max(0, issuedAt + TTL_MS + 300 - Date.now()));
      for (let i = 0; i < 4; i++) {
        const r = await callRoute(flow.url('sql'), tokens.access_token);
        assert.equal(r.status, 401, `expired, request ${i}`);
        assert.equal(r.challenge?.params.error, 'invalid_token');
      }
      const { tokens: t2, clientId: c2 } = await obtainTokens(plain.issuer, {
        resource: plain.url('sql'), email: ANN.email, password: ANN.password, redirectUri,
      });
      for (let i = 0; i < 4; i++) assert.equal((await callRoute(plain.url('sql'), t2.access_token)).status, 200);
      const rv = await revokeToken(plain.issuer, { token: t2.access_token, clientId: c2 });
      assert.equal(rv.status, 200, rv.text);
      for (let i = 0; i < 4; i++) {
        const r = await callRoute(plain.url('sql'), t2.access_token);
        assert.equal(r.status, 401, `revoked, request ${i}`);
        assert.equal(r.challenge?.params.error, 'invalid_token');
      }
    });

    test('kill -9 right after a token is issued; restarted on the same state, the token works', T, async () => {
      const port = await freePort();
      const dir = stateDir();
      const store = await S.store();
      const opts = { upstream, store, stateDir: dir, port };
      // The account is made before the gateway starts: this test is about the gateway's
      // own writes surviving kill -9 (the CLI writing beside a running gateway is the
      // next test).
      if (S.kind === 'sqlite') await addUser(offlineConfig(dir), 'kim@example.com', 'kims-password-1');
      else await addUser(offlineConfig(dir, store), 'kim@example.com', 'kims-password-1');
      const g1 = await startIdentityGateway({ name: `${S.kind}-crash-1`, ...opts });
      const client = await registerClient(g1.issuer, { redirectUris: [redirectUri] });
      const a = await browserAuthorize(g1.issuer, { clientId: client.client_id, redirectUri, resource: g1.url('sql'), email: 'kim@example.com', password: 'kims-password-1' });
      const t = await exchangeCode(g1.issuer, { code: a.code, verifier: a.verifier, clientId: client.client_id, redirectUri, resource: g1.url('sql') });
      assert.equal(t.status, 200, t.text);
      await killHard(g1.gw);
      const g2 = await startIdentityGateway({ name: `${S.kind}-crash-2`, ...opts });
      try {
        assert.equal(g2.url('sql'), g1.url('sql'));
        const r = await callRoute(g2.url('sql'), t.json.access_token);
        assert.equal(r.status, 200, r.text.slice(0, 200));
        await waitLogLine(g2.gw, (l) => l.status === 200 && l.token_id === tokenId(t.json.access_token) && l.user === 'user:kim@example.com');
        const rf = await refreshToken(g2.issuer, { refreshToken: t.json.refresh_token, clientId: client.client_id, resource: g2.url('sql') });
        assert.equal(rf.status, 200, rf.text);
        assert.equal((await callRoute(g2.url('sql'), rf.json.access_token)).status, 200);
      } finally {
        await g2.gw.stop();
      }
    });

    // Regression: with SQLite, running the CLI beside a running gateway must not hide the
    // gateway's later writes from other connections (and from a restart).
    // Regression: the store's open() dropped the gateway's SQLite locks, so the CLI reset the WAL.
    test('a token issued after the CLI wrote to the store is in `tokens list --json`', T, async () => {
      await addUser(plain.config, `cli-${S.kind}@example.com`, 'written-while-running-1');
      const { tokens } = await obtainTokens(plain.issuer, {
        resource: plain.url('sql'), email: `cli-${S.kind}@example.com`, password: 'written-while-running-1', redirectUri,
      });
      const list = JSON.parse((await cliOk(plain.config, ['tokens', 'list', '--json'])).stdout);
      const ids = list.map((e) => e.token_id);
      assert.ok(ids.includes(tokenId(tokens.access_token)), `tokens list has ${list.length} entries, not the new access token`);
      assert.ok(ids.includes(tokenId(tokens.refresh_token)), 'and its refresh token');
    });
  });
}

describe('two instances on one PostgreSQL', { skip: (DIRECT && 'E2E_DIRECT=1: needs the gateway') || postgresUnavailable() || false }, () => {
  let upstream;
  let a;
  let b;
  let publicHost;

  before(async () => {
    const dsn = (await postgres()).dsn;
    upstream = await startSqlite('http', { name: 'pair-sqlite' });
    const portA = await freePort();
    publicHost = `127.0.0.1:${portA}`;
    // Both instances serve the same public routes (a load balancer in front would send
    // Host: 127.0.0.1:PORT_A to either): same route URLs, same issuer, one store.
    const routes = [{ name: 'sql', to: upstream.url, public: false, from: `http://${publicHost}/sql` }];
    a = await startIdentityGateway({ name: 'pair-a', upstream, routes, store: { postgres: dsn }, port: portA });
    b = await startIdentityGateway({ name: 'pair-b', upstream, routes, store: { postgres: dsn } });
    await addUser(a.config, 'pat@example.com', 'pats-password-1');
  });
  after(async () => {
    try {
      await a?.gw.stop();
      await b?.gw.stop();
    } finally {
      await upstream?.stop();
    }
  });

  const onB = (token) => callRoute(`${b.gw.url}/sql`, token, { host: publicHost });

  /** Polls B until it refuses token; resolves the milliseconds it took (or null after 3 s). */
  async function refusedByB(token, since) {
    const ok = await pollUntil(async () => (await onB(token)).status === 401, { ms: 3000, intervalMs: 10 });
    return ok ? Date.now() - since : null;
  }

  test('a token issued by A works on B; revoked through A\'s endpoint, B refuses it within 1 s', T, async () => {
    const redirectUri = `http://127.0.0.1:${await freePort()}/callback`;
    const { tokens, clientId } = await obtainTokens(a.issuer, { resource: a.url('sql'), email: 'pat@example.com', password: 'pats-password-1', redirectUri });
    const r = await onB(tokens.access_token);
    assert.equal(r.status, 200, r.text.slice(0, 200));
    await waitLogLine(b.gw, (l) => l.status === 200 && l.token_id === tokenId(tokens.access_token) && l.user === 'user:pat@example.com');
    for (let i = 0; i < 3; i++) assert.equal((await onB(tokens.access_token)).status, 200, 'cached on B');
    const rv = await revokeToken(a.issuer, { token: tokens.access_token, clientId });
    const since = Date.now();
    assert.equal(rv.status, 200, rv.text);
    const ms = await refusedByB(tokens.access_token, since);
    assert.notEqual(ms, null, 'B still accepts the token 3 s after the revocation');
    assert.ok(ms < 1000, `B refused the revoked token after ${ms} ms`);
    const after = await onB(tokens.access_token);
    assert.equal(after.challenge?.params.error, 'invalid_token');
  });

  test('revoked with the CLI (tokens revoke --token), B refuses it within 1 s', T, async () => {
    const redirectUri = `http://127.0.0.1:${await freePort()}/callback`;
    const { tokens } = await obtainTokens(a.issuer, { resource: a.url('sql'), email: 'pat@example.com', password: 'pats-password-1', redirectUri });
    for (let i = 0; i < 3; i++) assert.equal((await onB(tokens.access_token)).status, 200);
    await cliOk(a.config, ['tokens', 'revoke', '--token', tokens.access_token]);
    const since = Date.now();
    const ms = await refusedByB(tokens.access_token, since);
    assert.notEqual(ms, null, 'B still accepts the token 3 s after the revocation');
    assert.ok(ms < 1000, `B refused the revoked token after ${ms} ms`);
  });
});

describe('the store stops under a running gateway', { skip: (DIRECT && 'E2E_DIRECT=1: needs the gateway') || postgresUnavailable() || false }, () => {
  let upstream;
  let g;

  before(async () => {
    const dsn = (await postgres()).dsn;
    upstream = await startSqlite('http', { name: 'fault-sqlite' });
    g = await startIdentityGateway({ name: 'fault-gateway', upstream, store: { postgres: dsn } });
    await addUser(g.config, 'flo@example.com', 'flos-password-1');
  });
  after(async () => {
    try { await g?.gw.stop(); } finally { await upstream?.stop(); }
  });

  test('PostgreSQL stopped: requests with a token get 503 within 3 s, then nothing reaches the upstream', { timeout: 90_000 }, async () => {
    const redirectUri = `http://127.0.0.1:${await freePort()}/callback`;
    const { tokens, clientId } = await obtainTokens(g.issuer, { resource: g.url('sql'), email: 'flo@example.com', password: 'flos-password-1', redirectUri });
    for (let i = 0; i < 3; i++) assert.equal((await callRoute(g.url('sql'), tokens.access_token)).status, 200);
    // A second valid access token that no route has seen yet (not in any cache).
    const fresh = await refreshToken(g.issuer, { refreshToken: tokens.refresh_token, clientId, resource: g.url('sql') });
    assert.equal(fresh.status, 200, fresh.text);
    await pg.stop();
    const down = Date.now();
    // A token the gateway confirmed a moment ago may be admitted from its cache while
    // that confirmation is fresh (docs/identity.md: "the cache not confirmed within
    // 2 s"); from then on every request is refused.
    let first = null;
    const statuses = [];
    while (!first && Date.now() - down < 6000) {
      const r = await callRoute(g.url('sql'), tokens.access_token, { timeoutMs: 10_000 });
      statuses.push(`${r.status}@${Date.now() - down}ms`);
      if (r.status === 503) first = r;
      else await sleep(100);
    }
    assert.ok(first, `no 503 within 6 s of the stop: ${statuses.join(' ')}`);
    const ms = Date.now() - down;
    assert.ok(ms < 3000, `the first 503 came ${ms} ms after the store stopped: ${statuses.join(' ')}`);
    const seen = upstream.messageLog().length;
    for (const [what, tok] of [['a valid token never seen on a route', fresh.json.access_token], ['the token in use', tokens.access_token]]) {
      const r = await callRoute(g.url('sql'), tok, { timeoutMs: 10_000 });
      assert.equal(r.status, 503, `${what}: HTTP ${r.status} after ${r.ms} ms: ${r.text.slice(0, 200)}`);
      assert.ok(r.ms < 3000, `${what}: answered after ${r.ms} ms`);
    }
    for (const r of [first]) {
      assert.equal(r.headers.get('retry-after'), '1');
      assert.equal(r.messages[0]?.error?.code, -32012, r.text);
      assert.equal(r.messages[0]?.id, 1);
    }
    await sleep(200);
    assert.equal(upstream.messageLog().length, seen, 'nothing reached the upstream once the store was reported down');
    assert.equal(g.gw.alive(), true);
  });
});
