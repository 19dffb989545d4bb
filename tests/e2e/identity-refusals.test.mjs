// What the gateway refuses, and exactly how (docs/identity.md, "What is refused, and
// how"), against the real binary in front of mcp-sqlite on routes behind sign-in, with
// built-in accounts made by the real CLI (`mcpgate users add`):
//   - discovery: a route's 401 and its challenge, the RFC 9728 and RFC 8414 documents;
//   - the authorization endpoint: PKCE missing / plain, resource and scope, unknown
//     client, redirect-URI mismatch (no redirect), a client ID metadata document URL on
//     a private address (refused before any connection), consent denied;
//   - the pages: sign-in and consent POSTs without or with a wrong CSRF value (403), a
//     wrong password (401, no session cookie), the lockout after max_failed_logins (429),
//     the cookies' attributes;
//   - the token endpoint: wrong / missing code_verifier, redirect_uri differing, unknown
//     client and bad secret;
//   - registration: bad metadata of several shapes, the per-minute limit (429);
//   - revocation of another client's token, of an unknown token;
//   - routes: malformed Authorization, unknown and altered tokens, a token of another route.
// Refusals that depend on the store (code replay, refresh reuse, expired and revoked
// tokens) run on both stores in identity-flow.test.mjs. Headless Chromium drives the
// sign-in, consent and error pages at the end (screenshots in build/e2e-artifacts/).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { DIRECT, freePort, startSqlite, tmpDir, within } from './lib/harness.mjs';
import { Browser } from './lib/browser.mjs';
import { chromiumMissing, launchChromium } from './lib/chromium.mjs';
import {
  AUTHORIZE_PATH, REGISTER_PATH, REVOKE_PATH, TOKEN_PATH, addUser, altered, authParams, authorizeUrl, browserAuthorize,
  callRoute, connectionCounter, exchangeCode, getJson, obtainTokens, pkcePair, post, registerClient, revokeToken,
  startIdentityGateway,
} from './lib/identity.mjs';

const T = { timeout: 60_000 };
const ANN = { email: 'ann@example.com', password: 'correct horse battery', groups: ['eng'] };
const WRONG = { email: 'wrong@example.com', password: 'right-one-1', groups: [] };
const LOCKED = { email: 'locked@example.com', password: 'right-one-2', groups: [] };
const MAX_FAILED = 3;
const BOT_SECRET = 'bot-secret-0123456789abcdef';

/** The Set-Cookie header for cookie `name` among a hop's setCookie list, parsed. */
function cookieAttrs(setCookies, name) {
  const raw = setCookies.find((c) => c.startsWith(`${name}=`));
  if (!raw) return null;
  const [nv, ...attrs] = raw.split(';').map((s) => s.trim());
  const out = { value: nv.slice(name.length + 1), raw };
  for (const a of attrs) {
    const i = a.indexOf('=');
    out[(i < 0 ? a : a.slice(0, i)).toLowerCase()] = i < 0 ? true : a.slice(i + 1);
  }
  return out;
}

/** Asserts a redirect to redirectUri carrying error=code (and state, iss, a description). */
function assertErrorRedirect(page, { redirectUri, error, state, issuer }) {
  assert.equal(page.stopped, true, `expected a redirect to ${redirectUri}, got HTTP ${page.status} at ${page.url}: ${page.bodyText?.slice(0, 200)}`);
  assert.equal(page.hops.length, 1, `one hop: ${JSON.stringify(page.hops.map((h) => [h.status, h.url]))}`);
  assert.equal(page.hops[0].status, 303);
  const cb = page.callback;
  assert.equal(`${new URL(cb.url).origin}${new URL(cb.url).pathname}`, redirectUri);
  assert.equal(cb.error, error, JSON.stringify(cb.params));
  assert.equal(cb.state, state);
  assert.equal(cb.iss, issuer);
  assert.equal(typeof cb.error_description, 'string');
  assert.ok(cb.error_description.length > 0);
  assert.equal(cb.code, undefined);
}

/** Asserts an OAuth JSON error answer. */
function assertOAuthError(r, status, error) {
  assert.equal(r.status, status, r.text.slice(0, 300));
  assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
  assert.match(r.headers.get('cache-control') ?? '', /no-store/);
  assert.equal(r.json?.error, error, r.text.slice(0, 300));
}

/** Asserts an error page: this status, HTML, no redirect. */
function assertErrorPage(page, status) {
  assert.equal(page.stopped, false, `unexpected redirect to ${page.callback?.url}`);
  assert.equal(page.status, status, `${page.url}: ${page.bodyText.slice(0, 300)}`);
  assert.equal(page.hops.at(-1).location, null);
  assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
}

describe('identity refusals (SQLite store)', { skip: DIRECT && 'E2E_DIRECT=1: needs the gateway' }, () => {
  let s;
  let base;
  let redirectUri;
  let upstreamCount;

  before(async () => {
    redirectUri = `http://127.0.0.1:${await freePort()}/callback`;
    const secretDir = tmpDir('mcpgate-secret-');
    const botSecretFile = path.join(secretDir, 'bot.secret');
    fs.writeFileSync(botSecretFile, BOT_SECRET, { mode: 0o600 });
    const upstream = await startSqlite('http', { name: 'refusals-sqlite' });
    s = await startIdentityGateway({
      name: 'refusals-gateway',
      upstream,
      routes: [
        { name: 'sql', to: upstream.url, public: false },
        { name: 'sql2', to: upstream.url, public: false },
        { name: 'scoped', to: upstream.url, public: false, options: { scopes: ['sql:read'] } },
      ],
      oauth: {
        max_failed_logins: MAX_FAILED,
        registrations_per_minute: 1000,
        clients: [
          { client_id: 'pre-public', name: 'Pre-registered', redirect_uris: [redirectUri] },
          { client_id: 'bot', client_secret_file: botSecretFile, grant_types: ['client_credentials'], groups: ['bots'] },
        ],
      },
    });
    s.upstreamOwned = upstream;
    base = s.issuer;
    upstreamCount = () => upstream.messageLog().length;
    for (const u of [ANN, WRONG, LOCKED]) await addUser(s.config, u.email, u.password, { groups: u.groups });
  });
  after(async () => {
    try { await s?.gw.stop(); } finally { await s?.upstreamOwned.stop(); }
  });

  // --- discovery ----------------------------------------------------------------

  test('a route without Authorization: 401 with the resource_metadata challenge, for POST, GET and DELETE', T, async () => {
    const before = upstreamCount();
    const prm = `${base}/.well-known/oauth-protected-resource/sql`;
    for (const method of ['POST', 'GET', 'DELETE']) {
      const r = await callRoute(s.url('sql'), null, { method });
      assert.equal(r.status, 401, `${method}: ${r.text.slice(0, 200)}`);
      assert.equal(r.headers.get('location'), null);
      assert.equal(r.challenge?.scheme, 'Bearer', `${method}: ${r.headers.get('www-authenticate')}`);
      assert.equal(r.challenge.params.resource_metadata, prm);
      assert.equal(r.challenge.params.error, undefined, 'no error code when no credentials were sent (RFC 6750 §3.1)');
      if (method === 'POST') {
        assert.equal(r.messages.length, 1, r.text);
        assert.equal(r.messages[0].id, 1);
        assert.equal(r.messages[0].error?.code, -32010, r.text);
      }
    }
    assert.equal(upstreamCount(), before, 'nothing reached the upstream');
  });

  test('RFC 9728 and RFC 8414 documents name the route and the issuer', T, async () => {
    const prm = await getJson(`${base}/.well-known/oauth-protected-resource/sql`);
    assert.equal(prm.status, 200, prm.text);
    assert.equal(prm.json.resource, s.url('sql'));
    assert.deepEqual(prm.json.authorization_servers, [base]);

    const as = await getJson(`${base}/.well-known/oauth-authorization-server`);
    assert.equal(as.status, 200, as.text);
    assert.match(as.headers.get('content-type'), /^application\/json/);
    const oidc = await getJson(`${base}/.well-known/openid-configuration`);
    assert.equal(oidc.status, 200);
    assert.deepEqual(oidc.json, as.json, 'the same document at both well-known paths');
    const m = as.json;
    assert.equal(m.issuer, base);
    assert.equal(m.authorization_endpoint, `${base}${AUTHORIZE_PATH}`);
    assert.equal(m.token_endpoint, `${base}${TOKEN_PATH}`);
    assert.equal(m.registration_endpoint, `${base}${REGISTER_PATH}`);
    assert.equal(m.revocation_endpoint, `${base}${REVOKE_PATH}`);
    assert.deepEqual(m.code_challenge_methods_supported, ['S256']);
    assert.ok(m.response_types_supported.includes('code'));
    for (const g of ['authorization_code', 'refresh_token', 'client_credentials']) {
      assert.ok(m.grant_types_supported.includes(g), `grant_types_supported has ${g}: ${m.grant_types_supported}`);
    }
  });

  // --- the authorization endpoint ---------------------------------------------------

  /** GET authorize for the pre-registered client with params changed by `change`. */
  async function authorize(change) {
    const { params } = authParams({ clientId: 'pre-public', redirectUri, resource: s.url('sql') });
    const p = { ...params };
    change(p);
    const browser = new Browser();
    const page = await browser.get(authorizeUrl(base, p), { stopAt: redirectUri });
    return { page, params: p, browser };
  }

  for (const [what, change, error] of [
    ['no code_challenge', (p) => { delete p.code_challenge; delete p.code_challenge_method; }, 'invalid_request'],
    ['code_challenge without code_challenge_method', (p) => { delete p.code_challenge_method; }, 'invalid_request'],
    ['code_challenge_method=plain', (p) => { p.code_challenge_method = 'plain'; p.code_challenge = pkcePair().verifier; }, 'invalid_request'],
    ['no resource', (p) => { delete p.resource; }, 'invalid_target'],
    ['a resource that names no route', (p) => { p.resource = `${base}/nowhere`; }, 'invalid_target'],
    ['a scope the route does not offer', (p) => { p.resource = s.url('scoped'); p.scope = 'sql:admin'; }, 'invalid_scope'],
  ]) {
    test(`authorize with ${what}: redirect with error=${error}`, T, async () => {
      const { page, params } = await authorize(change);
      assertErrorRedirect(page, { redirectUri, error, state: params.state, issuer: base });
    });
  }

  test('authorize with a resource under a route binds to that route', T, async () => {
    const { page } = await authorize((p) => { p.resource = `${s.url('sql')}/mcp`; });
    assert.equal(page.stopped, false, `unexpected redirect: ${JSON.stringify(page.callback?.params)}`);
    assert.equal(page.status, 200);
    assert.equal(new URL(page.url).pathname, '/_mcpgate/signin');
  });

  test('authorize with an unknown client_id: 400 page, no redirect', T, async () => {
    const { page } = await authorize((p) => { p.client_id = 'no-such-client'; });
    assertErrorPage(page, 400);
    assert.equal(page.hops.length, 1);
  });

  test('authorize with a redirect_uri that is not registered: 400 "Redirect URI mismatch", no redirect', T, async () => {
    const other = `${new URL(redirectUri).origin}/elsewhere`;
    for (const ru of [other, 'https://evil.example/callback', `${redirectUri}?x=1`]) {
      const { params } = authParams({ clientId: 'pre-public', redirectUri: ru, resource: s.url('sql') });
      const page = await new Browser().get(authorizeUrl(base, params), { stopAt: [redirectUri, ru] });
      assertErrorPage(page, 400);
      assert.equal(page.hops.length, 1, `no redirect for ${ru}`);
      assert.match(page.bodyText, /Redirect URI mismatch/, `${ru}: ${page.bodyText.slice(0, 300)}`);
    }
    // A loopback redirect URI may differ in its port only (RFC 8252 §7.3).
    const otherPort = `http://127.0.0.1:${Number(new URL(redirectUri).port) === 65000 ? 65001 : 65000}/callback`;
    const { params } = authParams({ clientId: 'pre-public', redirectUri: otherPort, resource: s.url('sql') });
    const page = await new Browser().get(authorizeUrl(base, params), { stopAt: otherPort });
    assert.equal(page.stopped, false);
    assert.equal(page.status, 200);
    assert.equal(new URL(page.url).pathname, '/_mcpgate/signin', 'another loopback port is accepted');
  });

  test('authorize with a client ID metadata document on a private address: 400 page, nothing fetched', T, async () => {
    const listener = await connectionCounter();
    try {
      for (const host of ['127.0.0.1', 'localhost']) {
        const clientId = `https://${host}:${listener.port}/client.json`;
        const { params } = authParams({ clientId, redirectUri, resource: s.url('sql') });
        const page = await new Browser().get(authorizeUrl(base, params), { stopAt: redirectUri });
        assertErrorPage(page, 400);
        assert.equal(page.hops.length, 1);
      }
      assert.equal(listener.count(), 0, 'the gateway connected to the private address');
    } finally {
      await listener.close();
    }
  });

  test('consent denied: redirect with error=access_denied', T, async () => {
    const { params } = authParams({ clientId: 'pre-public', redirectUri, resource: s.url('sql2') });
    const browser = new Browser();
    let page = await browser.get(authorizeUrl(base, params), { stopAt: redirectUri });
    page = await browser.submit(page.form({ field: 'password' }), { fields: { email: ANN.email, password: ANN.password }, stopAt: redirectUri });
    assert.equal(page.status, 200, page.bodyText.slice(0, 300));
    assert.equal(new URL(page.url).pathname, '/_mcpgate/consent');
    page = await browser.submit(page.form({ button: 'decision' }), { button: { name: 'decision', value: 'deny' }, stopAt: redirectUri });
    assertErrorRedirect(page, { redirectUri, error: 'access_denied', state: params.state, issuer: base });
  });

  // --- the pages ------------------------------------------------------------------

  /** A fresh client and the sign-in page for it. */
  async function signinPage(route = 'sql') {
    const client = await registerClient(base, { redirectUris: [redirectUri] });
    const { params, pkce } = authParams({ clientId: client.client_id, redirectUri, resource: s.url(route) });
    const browser = new Browser();
    const page = await browser.get(authorizeUrl(base, params), { stopAt: redirectUri });
    assert.equal(page.status, 200, page.bodyText.slice(0, 300));
    assert.equal(new URL(page.url).pathname, '/_mcpgate/signin');
    return { browser, page, params, pkce, client };
  }

  test('the sign-in page: its form fields and the CSRF cookie', T, async () => {
    const { page, browser } = await signinPage();
    assert.equal(page.hops[0].status, 303, 'authorize redirects to the sign-in page');
    assert.match(page.hops[0].location, new RegExp(`^${base}/_mcpgate/signin\\?req=`));
    const f = page.form({ field: 'password' });
    assert.equal(f.method, 'POST');
    assert.equal(f.action, `${base}/_mcpgate/signin`);
    for (const name of ['req', 'csrf', 'email', 'password']) assert.ok(f.has(name), `field ${name}`);
    assert.ok(f.get('csrf').length >= 16);
    const csrf = cookieAttrs(page.hops.flatMap((h) => h.setCookie), '_mcpgate_csrf');
    assert.ok(csrf, `a _mcpgate_csrf cookie: ${JSON.stringify(page.hops.map((h) => h.setCookie))}`);
    assert.equal(csrf.httponly, true);
    assert.equal(String(csrf.samesite).toLowerCase(), 'lax');
    assert.equal(csrf.path, '/_mcpgate/');
    assert.equal(csrf.secure, undefined, 'no Secure on a plain-HTTP listener');
    assert.equal(browser.cookies.get(`${base}/_mcpgate/signin`, '_mcpgate_session'), undefined);
    assert.equal(page.headers.get('cache-control'), 'no-store');
  });

  test('sign-in POST without csrf, or with a wrong one: 403, no session', T, async () => {
    for (const tamper of [{ omit: ['csrf'] }, { fields: { csrf: 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' } }]) {
      const { page, browser } = await signinPage();
      const f = page.form({ field: 'password' });
      const res = await browser.submit(f, {
        ...tamper, fields: { ...(tamper.fields ?? {}), email: ANN.email, password: ANN.password }, stopAt: redirectUri,
      });
      assertErrorPage(res, 403);
      assert.equal(browser.cookies.get(`${base}/_mcpgate/consent`, '_mcpgate_session'), undefined, JSON.stringify(tamper));
    }
  });

  test('a wrong password: 401 page, no session cookie', T, async () => {
    const { page, browser } = await signinPage();
    const res = await browser.submit(page.form({ field: 'password' }),
      { fields: { email: WRONG.email, password: 'not-the-password' }, stopAt: redirectUri });
    assertErrorPage(res, 401);
    const set = res.hops.flatMap((h) => h.setCookie);
    const session = cookieAttrs(set, '_mcpgate_session');
    assert.ok(!session || session.value === '', `no session cookie: ${set}`);
    assert.equal(browser.cookies.get(`${base}/_mcpgate/consent`, '_mcpgate_session'), undefined);
    // An unknown account gets the same answer.
    const again = await signinPage();
    const res2 = await again.browser.submit(again.page.form({ field: 'password' }),
      { fields: { email: 'nobody@example.com', password: 'whatever-1' }, stopAt: redirectUri });
    assertErrorPage(res2, 401);
  });

  test('a right password: the session cookie, then the consent page', T, async () => {
    const { page, browser } = await signinPage();
    const res = await browser.submit(page.form({ field: 'password' }),
      { fields: { email: ANN.email, password: ANN.password }, stopAt: redirectUri });
    assert.equal(res.status, 200, res.bodyText.slice(0, 300));
    assert.equal(new URL(res.url).pathname, '/_mcpgate/consent');
    const session = cookieAttrs(res.hops[0].setCookie, '_mcpgate_session');
    assert.ok(session?.value, `a session cookie on the sign-in answer: ${res.hops[0].setCookie}`);
    assert.equal(session.httponly, true);
    assert.equal(String(session.samesite).toLowerCase(), 'lax');
    assert.equal(session.path, '/_mcpgate/');
    const f = res.form({ button: 'decision' });
    for (const name of ['req', 'csrf']) assert.ok(f.has(name), `consent field ${name}`);
    assert.deepEqual(f.buttons.filter((b) => b.name === 'decision').map((b) => b.value).sort(), ['allow', 'deny']);
  });

  test('consent POST without csrf, or with a wrong one: 403, no code', T, async () => {
    for (const tamper of [{ omit: ['csrf'] }, { fields: { csrf: 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' } }]) {
      const { page, browser } = await signinPage('sql2');
      const consent = await browser.submit(page.form({ field: 'password' }),
        { fields: { email: ANN.email, password: ANN.password }, stopAt: redirectUri });
      assert.equal(new URL(consent.url).pathname, '/_mcpgate/consent');
      const res = await browser.submit(consent.form({ button: 'decision' }),
        { ...tamper, button: { name: 'decision', value: 'allow' }, stopAt: redirectUri });
      assertErrorPage(res, 403);
    }
  });

  test(`the account is throttled after ${MAX_FAILED} failed sign-ins: 429, even with the right password`, T, async () => {
    for (let i = 1; i <= MAX_FAILED; i++) {
      const { page, browser } = await signinPage();
      const res = await browser.submit(page.form({ field: 'password' }),
        { fields: { email: LOCKED.email, password: `wrong-${i}` }, stopAt: redirectUri });
      assertErrorPage(res, 401);
    }
    const { page, browser } = await signinPage();
    const res = await browser.submit(page.form({ field: 'password' }),
      { fields: { email: LOCKED.email, password: LOCKED.password }, stopAt: redirectUri });
    assertErrorPage(res, 429);
    assert.equal(browser.cookies.get(`${base}/_mcpgate/consent`, '_mcpgate_session'), undefined);
    // Another account is not affected.
    const other = await signinPage();
    const ok = await other.browser.submit(other.page.form({ field: 'password' }),
      { fields: { email: ANN.email, password: ANN.password }, stopAt: redirectUri });
    assert.equal(new URL(ok.url).pathname, '/_mcpgate/consent');
  });

  // --- the token endpoint ---------------------------------------------------------

  /** A code for a fresh client (and everything needed to redeem it). */
  async function freshCode(route = 'sql') {
    const client = await registerClient(base, { redirectUris: [redirectUri] });
    const a = await browserAuthorize(base, {
      clientId: client.client_id, redirectUri, resource: s.url(route), email: ANN.email, password: ANN.password,
    });
    assert.equal(a.iss, base, 'iss on the redirect (RFC 9207)');
    return { ...a, clientId: client.client_id };
  }

  test('token: a wrong code_verifier is invalid_grant, and the code is spent', T, async () => {
    const a = await freshCode();
    const bad = await exchangeCode(base, { ...a, redirectUri, resource: s.url('sql'), verifier: pkcePair().verifier });
    assertOAuthError(bad, 400, 'invalid_grant');
    const good = await exchangeCode(base, { ...a, redirectUri, resource: s.url('sql') });
    assertOAuthError(good, 400, 'invalid_grant');
  });

  test('token: no code_verifier is invalid_request', T, async () => {
    const a = await freshCode();
    const r = await exchangeCode(base, { ...a, redirectUri, resource: s.url('sql'), verifier: undefined });
    assertOAuthError(r, 400, 'invalid_request');
  });

  test('token: a redirect_uri other than the authorization request\'s is invalid_grant', T, async () => {
    const a = await freshCode();
    const r = await exchangeCode(base, { ...a, redirectUri: `${new URL(redirectUri).origin}/other`, resource: s.url('sql') });
    assertOAuthError(r, 400, 'invalid_grant');
  });

  test('token: an unknown client, a bad secret (400, or 401 with Basic)', T, async () => {
    const a = await freshCode();
    const r1 = await exchangeCode(base, { ...a, clientId: 'no-such-client', redirectUri, resource: s.url('sql') });
    assertOAuthError(r1, 400, 'invalid_client');
    const cc = { grant_type: 'client_credentials', resource: s.url('sql') };
    const r2 = await post(base, TOKEN_PATH, { ...cc, client_id: 'bot', client_secret: 'wrong-secret' });
    assertOAuthError(r2, 400, 'invalid_client');
    const r3 = await post(base, TOKEN_PATH, cc, { basic: ['bot', 'wrong-secret'] });
    assertOAuthError(r3, 401, 'invalid_client');
    const r4 = await post(base, TOKEN_PATH, cc, { basic: ['nobody', 'x'] });
    assertOAuthError(r4, 401, 'invalid_client');
  });

  // --- registration -----------------------------------------------------------------

  const BAD_REGISTRATIONS = [
    ['an http redirect URI that is not loopback', { redirect_uris: ['http://app.example/cb'] }, 'invalid_redirect_uri'],
    ['a redirect URI with a fragment', { redirect_uris: ['https://app.example/cb#frag'] }, 'invalid_redirect_uri'],
    ['a relative redirect URI', { redirect_uris: ['/callback'] }, 'invalid_redirect_uri'],
    ['grant_types password', { grant_types: ['password'] }, 'invalid_client_metadata'],
    ['response_types token', { response_types: ['token'] }, 'invalid_client_metadata'],
    ['a JSON array body', '[]', 'invalid_client_metadata'],
    ['a body that is not JSON', '{"redirect_uris": [', 'invalid_client_metadata'],
  ];
  for (const [what, change, error] of BAD_REGISTRATIONS) {
    test(`register with ${what}: 400 ${error}`, T, async () => {
      const good = {
        client_name: 'bad', redirect_uris: [redirectUri], grant_types: ['authorization_code'], response_types: ['code'],
        token_endpoint_auth_method: 'none',
      };
      const body = typeof change === 'string' ? change : { ...good, ...change };
      const r = await post(base, REGISTER_PATH, body, { json: true });
      assertOAuthError(r, 400, error);
      assert.equal(r.json.client_id, undefined);
    });
  }

  // --- revocation ---------------------------------------------------------------------

  test('revoke: another client\'s token is unauthorized_client (and keeps working); an unknown token gets 200', T, async () => {
    const { tokens, clientId } = await obtainTokens(base, { resource: s.url('sql'), email: ANN.email, password: ANN.password, redirectUri });
    const other = await registerClient(base, { redirectUris: [redirectUri] });
    assert.notEqual(other.client_id, clientId);
    const r = await revokeToken(base, { token: tokens.access_token, clientId: other.client_id });
    assertOAuthError(r, 400, 'unauthorized_client');
    assert.equal((await callRoute(s.url('sql'), tokens.access_token)).status, 200, 'still valid');
    const u = await revokeToken(base, { token: 'mcpg_at_thisisnotatokenthegatewayissued000000', clientId });
    assert.equal(u.status, 200, u.text);
  });

  // --- routes ---------------------------------------------------------------------

  test('routes: malformed Authorization is invalid_request; unknown, altered and other-route tokens are invalid_token', T, async () => {
    const before = upstreamCount();
    const { tokens } = await obtainTokens(base, { resource: s.url('sql'), email: ANN.email, password: ANN.password, redirectUri });
    const at = tokens.access_token;
    assert.match(at, /^mcpg_at_/);
    const ok = await callRoute(s.url('sql'), at);
    assert.equal(ok.status, 200, ok.text.slice(0, 200));
    const afterOk = upstreamCount();
    assert.ok(afterOk > before);

    for (const authorization of ['Bearer', `Bearer ${at} extra`, `Bearer  ${at}x y`]) {
      const r = await callRoute(s.url('sql'), null, { authorization });
      assert.equal(r.status, 401, `${JSON.stringify(authorization)}: ${r.text.slice(0, 200)}`);
      assert.equal(r.challenge?.scheme, 'Bearer');
      assert.equal(r.challenge.params.error, 'invalid_request', `${JSON.stringify(authorization)}: ${r.headers.get('www-authenticate')}`);
    }
    for (const [what, tok, url] of [
      ['unknown', 'mcpg_at_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', s.url('sql')],
      ['altered', altered(at), s.url('sql')],
      ['issued for route sql, sent to sql2', at, s.url('sql2')],
    ]) {
      const r = await callRoute(url, tok);
      assert.equal(r.status, 401, `${what}: ${r.text.slice(0, 200)}`);
      assert.equal(r.challenge?.params.error, 'invalid_token', `${what}: ${r.headers.get('www-authenticate')}`);
      assert.equal(r.challenge.params.resource_metadata, `${base}/.well-known/oauth-protected-resource/${new URL(url).pathname.slice(1)}`);
      assert.equal(r.messages[0]?.error?.code, -32010, r.text);
    }
    assert.equal(upstreamCount(), afterOk, 'no refused request reached the upstream');
  });

  // --- headless Chromium -------------------------------------------------------------

  test('headless Chromium: sign-in, consent and an error page, with screenshots', { timeout: 90_000 }, async (t) => {
    const why = chromiumMissing();
    if (why) { t.skip(why); return; }
    const client = await registerClient(base, { redirectUris: [redirectUri], name: 'Chromium e2e' });
    const { params, pkce } = authParams({ clientId: client.client_id, redirectUri, resource: s.url('sql') });
    const ch = await launchChromium();
    try {
      const callback = ch.interceptCallback(redirectUri);
      await ch.open(authorizeUrl(base, params));
      assert.equal(new URL(ch.url()).pathname, '/_mcpgate/signin');
      await ch.page.waitForSelector('input[name=password]');
      await ch.fill('input[name=email]', ANN.email);
      await ch.fill('input[name=password]', ANN.password);
      const shots = [await ch.screenshot('signin')];
      await ch.page.press('input[name=password]', 'Enter');
      await ch.page.waitForSelector('button[name=decision][value=allow]');
      assert.equal(new URL(ch.url()).pathname, '/_mcpgate/consent');
      shots.push(await ch.screenshot('consent'));
      await ch.click('button[name=decision][value=allow]');
      const cb = await within(15_000, callback, 'the redirect to redirect_uri');
      assert.equal(cb.state, params.state);
      assert.equal(cb.iss, base);
      await ch.page.waitForSelector('#done');
      const tok = await exchangeCode(base, { code: cb.code, verifier: pkce.verifier, clientId: client.client_id, redirectUri, resource: s.url('sql') });
      assert.equal(tok.status, 200, tok.text);
      assert.equal((await callRoute(s.url('sql'), tok.json.access_token)).status, 200);

      // An error page: a redirect URI that is not registered.
      const bad = authParams({ clientId: client.client_id, redirectUri: `${new URL(redirectUri).origin}/elsewhere`, resource: s.url('sql') });
      const resp = await ch.open(authorizeUrl(base, bad.params));
      assert.equal(resp.status(), 400);
      assert.match(await ch.page.textContent('body'), /Redirect URI mismatch/);
      shots.push(await ch.screenshot('error'));
      for (const f of shots) {
        const png = fs.readFileSync(f);
        assert.equal(png.subarray(1, 4).toString(), 'PNG', f);
        assert.ok(png.length > 2000, `${f}: ${png.length} bytes`);
      }
      assert.deepEqual(shots.map((f) => path.basename(f)), ['signin.png', 'consent.png', 'error.png']);
    } finally {
      await ch.close();
    }
  });
});

describe('registration rate limit', { skip: DIRECT && 'E2E_DIRECT=1: needs the gateway' }, () => {
  let s;
  before(async () => {
    s = await startIdentityGateway({ name: 'ratelimit-gateway', oauth: { registrations_per_minute: 2 } });
  });
  after(async () => { await s?.stop(); });

  test('over registrations_per_minute: 429 with Retry-After: 60', T, async () => {
    const ru = `http://127.0.0.1:${await freePort()}/callback`;
    await registerClient(s.issuer, { redirectUris: [ru] });
    await registerClient(s.issuer, { redirectUris: [ru] });
    const r = await post(s.issuer, REGISTER_PATH, {
      client_name: 'third', redirect_uris: [ru], token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code'], response_types: ['code'],
    }, { json: true });
    assert.equal(r.status, 429, r.text.slice(0, 300));
    assert.equal(r.headers.get('retry-after'), '60');
    assert.equal(r.json?.client_id, undefined);
  });
});
