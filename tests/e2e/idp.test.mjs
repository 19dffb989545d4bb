// The tooling of the identity tests, each piece proved against real things:
//   1. fixtures/oidc-idp.mjs (panva's oidc-provider) started with lib/idp.mjs: discovery,
//      the authorization code flow with PKCE driven by lib/browser.mjs through the login
//      and consent forms (every hop and cookie checked), ID tokens verified with jose
//      (groups claim, ES256 / RS256 / EdDSA keys), a wrong password, cancel and deny,
//      single sign-on on the second flow, key rotation, account changes, and stop()
//      (also when the test process dies).
//   2. lib/oauth-client.mjs: the official SDK client signs in to an MCP server that needs
//      a bearer token (an SDK server in this process, RFC 9728 metadata pointing at the
//      IdP, which registers the client and issues JWT access tokens for the resource).
//   3. lib/chromium.mjs: real headless Chromium signs in on the IdP's pages, screenshots
//      in build/e2e-artifacts/.
// None of this needs the gateway.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { createLocalJWKSet, createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { z } from 'zod';
import { E2E_DIR, freePort, sleep, waitExit, within } from './lib/harness.mjs';
import { startIdp } from './lib/idp.mjs';
import { Browser, CookieJar, signIn } from './lib/browser.mjs';
import { TestOAuthClientProvider, connectWithOAuth, formUserAgent } from './lib/oauth-client.mjs';
import { chromiumMissing, launchChromium } from './lib/chromium.mjs';

const T = { timeout: 60_000 };

const ANN = { email: 'ann@example.com', password: 'correct horse', name: 'Ann Example', groups: ['eng', 'ops'] };
const BOB = { email: 'bob@example.com', password: 'hunter2', name: 'Bob Example', groups: [] };

function pkce() {
  const verifier = crypto.randomBytes(32).toString('base64url');
  return { verifier, challenge: crypto.createHash('sha256').update(verifier).digest('base64url') };
}

function authorizeUrl(idp, params) {
  const u = new URL(`${idp.issuer}/auth`);
  u.search = new URLSearchParams({ response_type: 'code', scope: 'openid email profile groups', ...params });
  return u.href;
}

async function redeem(idp, { clientId, secret, code, redirectUri, verifier }) {
  const body = { grant_type: 'authorization_code', code, redirect_uri: redirectUri };
  if (verifier !== undefined) body.code_verifier = verifier;
  const res = await fetch(`${idp.issuer}/token`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams(body),
    signal: AbortSignal.timeout(10_000),
  });
  return { status: res.status, body: await res.json() };
}

/** A complete sign-in with the form driver; resolves { callback, tokens, verifier, state, nonce }. */
async function codeFlow(idp, browser, { clientId, secret, redirectUri, account = ANN }) {
  const { verifier, challenge } = pkce();
  const state = crypto.randomBytes(8).toString('hex');
  const nonce = crypto.randomBytes(8).toString('hex');
  const page = await signIn(browser, authorizeUrl(idp, {
    client_id: clientId, redirect_uri: redirectUri, state, nonce, code_challenge: challenge, code_challenge_method: 'S256',
  }), { stopAt: redirectUri, email: account.email, password: account.password });
  assert.equal(page.callback.error, undefined, JSON.stringify(page.callback));
  assert.equal(page.callback.state, state);
  const r = await redeem(idp, { clientId, secret, code: page.callback.code, redirectUri, verifier });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return { callback: page.callback, tokens: r.body, verifier, state, nonce };
}

// ---------------------------------------------------------------------------

describe('OpenID provider fixture, driven by the form driver', () => {
  let idp;
  let cbPort;
  let redirectUri;
  const client = { client_id: 'mcpgate', client_secret: 'gw-secret-1' };

  before(async () => {
    cbPort = await freePort();
    redirectUri = `http://127.0.0.1:${cbPort}/callback`;
    idp = await startIdp({
      name: 'idp-form',
      consent: 'form',
      alg: 'ES256',
      algs: ['RS256', 'EdDSA'],
      clients: [
        { ...client, redirect_uris: [redirectUri] },
        { client_id: 'rs-client', client_secret: 'rs-secret', redirect_uris: [redirectUri], id_token_signed_response_alg: 'RS256' },
        { client_id: 'ed-client', client_secret: 'ed-secret', redirect_uris: [redirectUri], id_token_signed_response_alg: 'EdDSA' },
      ],
      accounts: [ANN, BOB],
    });
  });
  after(async () => { await idp?.stop(); });

  test('discovery document and JWKS', T, async () => {
    const d = await idp.discovery();
    assert.match(idp.issuer, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(d.issuer, idp.issuer);
    assert.equal(d.authorization_endpoint, `${idp.issuer}/auth`);
    assert.equal(d.token_endpoint, `${idp.issuer}/token`);
    assert.equal(d.jwks_uri, `${idp.issuer}/jwks`);
    assert.equal(d.userinfo_endpoint, `${idp.issuer}/me`);
    assert.deepEqual(d.code_challenge_methods_supported, ['S256']);
    assert.equal(d.authorization_response_iss_parameter_supported, true);
    for (const s of ['openid', 'email', 'profile', 'groups']) assert.ok(d.scopes_supported.includes(s), s);
    assert.ok(d.claims_supported.includes('groups'));
    for (const a of ['ES256', 'RS256', 'EdDSA']) assert.ok(d.id_token_signing_alg_values_supported.includes(a), a);
    const jwks = await idp.jwks();
    assert.deepEqual(jwks.keys.map((k) => [k.kty, k.alg]).sort(), [['EC', 'ES256'], ['OKP', 'EdDSA'], ['RSA', 'RS256']]);
    for (const k of jwks.keys) {
      assert.equal(k.d, undefined, 'no private key material in the JWKS');
      assert.equal(k.use, 'sig');
    }
  });

  test('authorization code flow with PKCE: every hop, cookie and claim', T, async () => {
    const b = new Browser({ stopAt: redirectUri });
    const { verifier, challenge } = pkce();
    const url = authorizeUrl(idp, {
      client_id: client.client_id, redirect_uri: redirectUri, state: 'state-1', nonce: 'nonce-1',
      code_challenge: challenge, code_challenge_method: 'S256',
    });

    // 1. /auth sends the browser to the login page and sets the interaction cookies.
    let page = await b.get(url);
    assert.equal(page.hops.length, 2);
    assert.equal(page.hops[0].status, 303);
    const login = new URL(page.hops[0].location);
    assert.equal(login.origin, idp.issuer);
    assert.match(login.pathname, /^\/interaction\/[A-Za-z0-9_-]+$/);
    assert.equal(page.url, login.href);
    assert.equal(page.status, 200);
    assert.equal(page.title, 'Sign in - Test IdP');
    assert.equal(page.textById('client'), 'mcpgate');
    const interaction = b.cookies.get(login, '_interaction');
    assert.equal(interaction.path, login.pathname, 'the interaction cookie is scoped to its page');
    assert.equal(interaction.httpOnly, true);
    assert.equal(b.cookies.get(`${idp.issuer}/auth`, '_interaction'), undefined, 'path-scoped: not sent to /auth');

    // 2. The login form: action, fields, buttons.
    const form = page.form({ field: 'password' });
    assert.equal(form.method, 'POST');
    assert.equal(form.action, `${login.href}/login`);
    assert.deepEqual(form.inputs.map((i) => [i.name, i.type]),
      [['email', 'email'], ['password', 'password'], ['action', 'submit'], ['action', 'submit']]);
    assert.deepEqual(form.buttons.map((x) => x.value), ['login', 'cancel']);

    // 3. Sign in: login -> resume at /auth/UID -> the consent page (a new interaction).
    page = await b.submit(form, { fields: { email: ANN.email, password: ANN.password }, button: 'login' });
    assert.deepEqual(page.hops.map((h) => h.status), [303, 303, 200]);
    assert.equal(page.hops[0].location, `${idp.issuer}/auth${login.pathname.slice('/interaction'.length)}`);
    assert.equal(page.hops[1].location, page.url);
    assert.equal(page.title, 'Authorize - Test IdP');
    assert.ok(b.cookies.get(`${idp.issuer}/`, '_session'), 'signed in: a session cookie for the whole origin');
    assert.equal(b.cookies.get(page.hops[1].url, '_interaction_resume'), undefined,
      'the resume cookie was deleted (expired) by the provider');

    // 4. Consent: Allow -> /auth/UID -> redirect_uri with code, state and iss (RFC 9207).
    page = await b.submit(page.form({ id: 'consent' }), { button: 'allow' });
    assert.ok(page.stopped);
    assert.deepEqual(page.hops.map((h) => h.status), [303, 303]);
    assert.equal(page.hops[1].location, page.callback.url);
    assert.ok(page.callback.url.startsWith(`${redirectUri}?`));
    assert.equal(page.callback.state, 'state-1');
    assert.equal(page.callback.iss, idp.issuer);
    assert.match(page.callback.code, /^[A-Za-z0-9_-]{20,}$/);
    assert.equal(page.callback.error, undefined);

    // 5. The code without its verifier, or with another one, is refused.
    const code = page.callback.code;
    const noVerifier = await redeem(idp, { clientId: client.client_id, secret: client.client_secret, code, redirectUri });
    assert.equal(noVerifier.status, 400);
    assert.equal(noVerifier.body.error, 'invalid_grant');
    const wrong = await redeem(idp, { clientId: client.client_id, secret: client.client_secret, code, redirectUri, verifier: pkce().verifier });
    assert.equal(wrong.status, 400);
    assert.equal(wrong.body.error, 'invalid_grant');
    const right = await redeem(idp, { clientId: client.client_id, secret: client.client_secret, code, redirectUri, verifier });
    assert.equal(right.status, 200, JSON.stringify(right.body));
    // 6. Single sign-on on the next flow (session cookie, consent remembered): straight
    //    to the redirect_uri, no page.
    const second = pkce();
    page = await b.get(authorizeUrl(idp, {
      client_id: client.client_id, redirect_uri: redirectUri, state: 'state-2', nonce: 'nonce-2',
      code_challenge: second.challenge, code_challenge_method: 'S256',
    }));
    assert.ok(page.stopped, `expected single sign-on, got ${page.url}`);
    assert.equal(page.hops.length, 1);
    assert.match(page.hops[0].cookie, /(^|; )_session=/);
    assert.equal(page.callback.state, 'state-2');
    const r = await redeem(idp, {
      clientId: client.client_id, secret: client.client_secret, code: page.callback.code, redirectUri, verifier: second.verifier,
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.token_type, 'Bearer');
    assert.ok(r.body.refresh_token, 'a refresh token for a client allowed the grant');
    assert.equal(r.body.scope, 'openid email profile groups');

    // 7. The ID token: ES256, the current kid, every claim.
    const header = decodeProtectedHeader(r.body.id_token);
    assert.equal(header.alg, 'ES256');
    assert.equal(header.kid, (await idp.keys()).signing.ES256);
    const { payload } = await jwtVerify(r.body.id_token, createRemoteJWKSet(new URL(`${idp.issuer}/jwks`)), {
      issuer: idp.issuer, audience: client.client_id, algorithms: ['ES256'],
    });
    assert.equal(payload.sub, ANN.email);
    assert.equal(payload.nonce, 'nonce-2');
    assert.equal(payload.email, ANN.email);
    assert.equal(payload.email_verified, true);
    assert.equal(payload.name, ANN.name);
    assert.deepEqual(payload.groups, ['eng', 'ops']);

    // 8. userinfo agrees.
    const me = await fetch(`${idp.issuer}/me`, { headers: { authorization: `Bearer ${r.body.access_token}` } });
    assert.equal(me.status, 200);
    const info = await me.json();
    assert.deepEqual([info.sub, info.email, info.groups], [ANN.email, ANN.email, ['eng', 'ops']]);
  });

  test('PKCE is required: an authorization request without code_challenge fails', T, async () => {
    const b = new Browser({ stopAt: redirectUri });
    const page = await b.get(authorizeUrl(idp, { client_id: client.client_id, redirect_uri: redirectUri, state: 's' }));
    assert.ok(page.stopped);
    assert.equal(page.callback.error, 'invalid_request');
    assert.equal(page.callback.error_description, 'Authorization Server policy requires PKCE to be used for this request');
    assert.equal(page.callback.code, undefined);
  });

  test('a wrong password is refused; the right one then signs in', T, async () => {
    const b = new Browser({ stopAt: redirectUri });
    const { verifier, challenge } = pkce();
    let page = await b.get(authorizeUrl(idp, {
      client_id: client.client_id, redirect_uri: redirectUri, state: 'pw', code_challenge: challenge, code_challenge_method: 'S256',
    }));
    page = await b.submit(page.form({ field: 'password' }), { fields: { email: BOB.email, password: 'wrong' }, button: 'login' });
    assert.equal(page.status, 401);
    assert.equal(page.stopped, false);
    assert.equal(page.hops.length, 1);
    assert.equal(page.textById('error'), 'Invalid email or password.');
    assert.equal(page.form({ field: 'password' }).get('email'), BOB.email, 'the email is kept');
    assert.equal(b.cookies.get(`${idp.issuer}/`, '_session'), undefined, 'not signed in');
    // An unknown account is refused the same way.
    page = await b.submit(page.form({ field: 'password' }), { fields: { email: 'eve@example.com', password: BOB.password } });
    assert.equal(page.status, 401);
    assert.equal(page.textById('error'), 'Invalid email or password.');
    // signIn() reports a refused password instead of looping.
    await assert.rejects(signIn(new Browser(), authorizeUrl(idp, {
      client_id: client.client_id, redirect_uri: redirectUri, state: 'x', code_challenge: pkce().challenge, code_challenge_method: 'S256',
    }), { stopAt: redirectUri, email: BOB.email, password: 'wrong' }), /the password was refused at .*Invalid email or password\./);
    page = await b.submit(page.form({ field: 'password' }), { fields: { email: BOB.email, password: BOB.password } });
    assert.equal(page.title, 'Authorize - Test IdP');
    page = await b.submit(page.form({ button: 'decision' }), { button: { name: 'decision', value: 'allow' } });
    assert.ok(page.stopped);
    const r = await redeem(idp, { clientId: client.client_id, secret: client.client_secret, code: page.callback.code, redirectUri, verifier });
    assert.equal(r.status, 200);
    const { payload } = await jwtVerify(r.body.id_token, createLocalJWKSet(await idp.jwks()), { issuer: idp.issuer, audience: client.client_id });
    assert.equal(payload.sub, BOB.email);
    assert.deepEqual(payload.groups, []);
  });

  test('cancel on the login page and deny on the consent page give access_denied', T, async () => {
    const { challenge } = pkce();
    const params = { client_id: client.client_id, redirect_uri: redirectUri, code_challenge: challenge, code_challenge_method: 'S256' };
    const b1 = new Browser({ stopAt: redirectUri });
    let page = await b1.get(authorizeUrl(idp, { ...params, state: 'cancel-1' }));
    page = await b1.submit(page.form({ field: 'password' }), { button: 'cancel' });
    assert.ok(page.stopped);
    assert.deepEqual([page.callback.error, page.callback.state, page.callback.code], ['access_denied', 'cancel-1', undefined]);
    assert.equal(page.callback.iss, idp.issuer);

    const b2 = new Browser({ stopAt: redirectUri });
    page = await signIn(b2, authorizeUrl(idp, { ...params, state: 'deny-1' }),
      { stopAt: redirectUri, email: ANN.email, password: ANN.password, decision: 'deny' });
    assert.deepEqual([page.callback.error, page.callback.state, page.callback.code], ['access_denied', 'deny-1', undefined]);
  });

  test('ID tokens signed with RS256 and EdDSA keys for clients that ask for them', T, async () => {
    const jwks = createLocalJWKSet(await idp.jwks());
    for (const [clientId, secret, alg, kty] of [['rs-client', 'rs-secret', 'RS256', 'RSA'], ['ed-client', 'ed-secret', 'EdDSA', 'OKP']]) {
      const { tokens } = await codeFlow(idp, new Browser(), { clientId, secret, redirectUri });
      const { payload, protectedHeader } = await jwtVerify(tokens.id_token, jwks, { issuer: idp.issuer, audience: clientId });
      assert.equal(protectedHeader.alg, alg);
      assert.equal(protectedHeader.kid, (await idp.keys()).signing[alg]);
      assert.equal((await idp.jwks()).keys.find((k) => k.kid === protectedHeader.kid).kty, kty);
      assert.deepEqual(payload.groups, ANN.groups);
      assert.equal(payload.sub, ANN.email);
    }
  });

  test('key rotation: new kid signs, old tokens verify while the old key stays published', T, async () => {
    const b = new Browser();
    const before = await codeFlow(idp, b, { clientId: client.client_id, secret: client.client_secret, redirectUri });
    const oldKid = decodeProtectedHeader(before.tokens.id_token).kid;

    const rotated = await idp.rotateKeys();
    assert.equal(rotated.kids.length, 3, 'one new key per alg');
    const newKid = rotated.kids.find((k) => k.startsWith('ES256-'));
    assert.notEqual(newKid, oldKid);
    const published = (await idp.jwks()).keys.map((k) => k.kid);
    assert.equal(published.length, 6);
    assert.ok(published.includes(oldKid) && published.includes(newKid));
    assert.equal((await idp.keys()).signing.ES256, newKid);

    // The same browser session (the provider's state survived): a new token, new kid.
    const afterRot = await codeFlow(idp, b, { clientId: client.client_id, secret: client.client_secret, redirectUri });
    assert.equal(decodeProtectedHeader(afterRot.tokens.id_token).kid, newKid);
    const jwks = createLocalJWKSet(await idp.jwks());
    await jwtVerify(afterRot.tokens.id_token, jwks, { issuer: idp.issuer, audience: client.client_id });
    await jwtVerify(before.tokens.id_token, jwks, { issuer: idp.issuer, audience: client.client_id });

    // Without keepOld the previous keys are gone: the old token no longer verifies.
    await idp.rotateKeys({ keepOld: false });
    const now = await idp.jwks();
    assert.equal(now.keys.length, 3);
    assert.ok(!now.keys.some((k) => k.kid === oldKid || k.kid === newKid));
    await assert.rejects(jwtVerify(before.tokens.id_token, createLocalJWKSet(now)), { code: 'ERR_JWKS_NO_MATCHING_KEY' });
  });

  test('changed accounts: the next token carries the new groups', T, async () => {
    await idp.setAccounts([{ ...ANN, groups: ['admins'] }, BOB]);
    try {
      const { tokens } = await codeFlow(idp, new Browser(), { clientId: client.client_id, secret: client.client_secret, redirectUri });
      const { payload } = await jwtVerify(tokens.id_token, createLocalJWKSet(await idp.jwks()), { issuer: idp.issuer });
      assert.deepEqual(payload.groups, ['admins']);
    } finally {
      await idp.setAccounts([ANN, BOB]);
    }
  });

  test('the request log shows what reached the provider', T, async () => {
    const log = await idp.requests();
    const auths = log.filter((r) => r.method === 'GET' && r.path === '/auth');
    assert.ok(auths.length >= 5, `GET /auth requests: ${auths.length}`);
    assert.ok(auths.every((r) => r.query.client_id));
    assert.ok(auths.some((r) => r.query.code_challenge_method === 'S256' && r.query.state === 'state-1'));
    assert.ok(log.some((r) => r.method === 'POST' && r.path === '/token'));
  });
});

// ---------------------------------------------------------------------------

describe('cookie jar', () => {
  test('host scope, Path, Secure, Domain, Max-Age and Expires', () => {
    const jar = new CookieJar();
    const t0 = Date.UTC(2030, 0, 1);
    assert.ok(jar.store('http://127.0.0.1:1/a/b/page', 'def=1', t0));
    assert.equal(jar.matching('http://127.0.0.1:2/a/b/x', t0).map((c) => c.name).join(), 'def', 'another port on the same host');
    assert.equal(jar.matching('http://127.0.0.1:1/a/x', t0).length, 0, 'default path /a/b');
    assert.equal(jar.matching('http://127.0.0.1:1/a/bc', t0).length, 0, '/a/bc does not path-match /a/b');
    assert.equal(jar.store('http://127.0.0.1:1/', 'sec=1; Secure', t0), null, 'Secure from http is refused');
    assert.ok(jar.store('https://127.0.0.1:1/', 'sec=2; Secure; Path=/', t0));
    assert.equal(jar.matching('http://127.0.0.1:1/', t0).some((c) => c.name === 'sec'), false, 'Secure not sent over http');
    assert.equal(jar.store('http://127.0.0.1:1/', 'dom=1; Domain=example.com', t0), null, 'foreign Domain refused');
    assert.ok(jar.store('http://a.example.com/', 'dom=2; Domain=.example.com; Path=/', t0));
    assert.ok(jar.matching('http://b.a.example.com/', t0).some((c) => c.name === 'dom'));
    assert.equal(jar.matching('http://example.org/', t0).length, 0);
    assert.ok(jar.store('http://127.0.0.1:1/', 'ttl=1; Path=/; Max-Age=10', t0));
    assert.ok(jar.matching('http://127.0.0.1:1/', t0 + 9_000).some((c) => c.name === 'ttl'));
    assert.ok(!jar.matching('http://127.0.0.1:1/', t0 + 10_001).some((c) => c.name === 'ttl'), 'expired');
    assert.ok(jar.store('http://127.0.0.1:1/', 'gone=1; Path=/', t0));
    assert.equal(jar.store('http://127.0.0.1:1/', 'gone=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT', t0), null);
    assert.ok(!jar.all(t0).some((c) => c.name === 'gone'), 'a past Expires deletes');
    assert.ok(jar.store('http://127.0.0.1:1/', 'gone2=1; Path=/', t0));
    assert.equal(jar.store('http://127.0.0.1:1/', 'gone2=1; Path=/; Max-Age=0; Expires=Fri, 01 Jan 2100 00:00:00 GMT', t0), null);
    assert.ok(!jar.all(t0).some((c) => c.name === 'gone2'), 'Max-Age wins over Expires');
    jar.store('http://127.0.0.1:1/x/y', 'o=short; Path=/x', t0);
    jar.store('http://127.0.0.1:1/x/y', 'o=long; Path=/x/y', t0);
    assert.equal(jar.header('http://127.0.0.1:1/x/y/z'), 'o=long; o=short', 'longer paths first');
    const per = new CookieJar({ perOrigin: true });
    per.store('http://127.0.0.1:1/', 'a=1', t0);
    assert.equal(per.matching('http://127.0.0.1:2/', t0).length, 0, 'perOrigin keeps ports apart');
  });
});

// ---------------------------------------------------------------------------
// The SDK's OAuth client against a protected MCP server (an SDK server in this process)

/** An MCP server at /mcp that wants a JWT from `issuer` with aud = its URL. */
async function startProtectedMcp() {
  const port = await freePort();
  const resource = `http://127.0.0.1:${port}/mcp`;
  const prmPath = '/.well-known/oauth-protected-resource/mcp';
  const state = { issuer: null, seen: [] };
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, resource);
    state.seen.push({ method: req.method, path: url.pathname, auth: req.headers.authorization ?? null });
    if (url.pathname === prmPath) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ resource, authorization_servers: [state.issuer], scopes_supported: ['mcp:tools'] }));
      return;
    }
    if (url.pathname !== '/mcp') { res.writeHead(404).end(); return; }
    const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
    let claims;
    try {
      if (!m) throw new Error('no token');
      ({ payload: claims } = await jwtVerify(m[1], createRemoteJWKSet(new URL(`${state.issuer}/jwks`)),
        { issuer: state.issuer, audience: resource, typ: 'at+jwt' }));
    } catch (e) {
      res.writeHead(401, {
        'www-authenticate': `Bearer resource_metadata="http://127.0.0.1:${port}${prmPath}"${m ? ', error="invalid_token"' : ''}`,
        'content-type': 'application/json',
      });
      res.end(JSON.stringify({ error: 'unauthorized', detail: e.message }));
      return;
    }
    const mcp = new McpServer({ name: 'protected-e2e', version: '1.0.0' });
    mcp.registerTool('whoami', { description: 'The token subject', inputSchema: { prefix: z.string() } },
      async ({ prefix }) => ({ content: [{ type: 'text', text: `${prefix}${claims.sub} ${claims.scope ?? ''}` }] }));
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on('close', () => { transport.close(); mcp.close(); });
    await mcp.connect(transport);
    await transport.handleRequest(req, res);
  });
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    resource, state,
    stop: () => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }),
  };
}

describe('SDK OAuth client provider, signing in through the form driver', () => {
  let idp;
  let mcp;

  before(async () => {
    mcp = await startProtectedMcp();
    idp = await startIdp({
      name: 'idp-sdk', registration: true, consent: 'form', accounts: [ANN, BOB],
      resources: { [mcp.resource]: { scope: 'mcp:tools' } },
    });
    mcp.state.issuer = idp.issuer;
  });
  after(async () => {
    await idp?.stop();
    await mcp?.stop();
  });

  test('401 -> discovery -> registration -> sign-in -> finishAuth -> connected', T, async () => {
    const browser = new Browser();
    const authProvider = await TestOAuthClientProvider.create({
      userAgent: formUserAgent(browser, { email: ANN.email, password: ANN.password }),
    });
    const { client, signedIn } = await connectWithOAuth(mcp.resource, authProvider, { fetch });
    try {
      assert.equal(signedIn, true);
      // What the SDK did: registered (RFC 7591) a public client with our metadata ...
      assert.equal(authProvider.registrations.length, 1);
      const reg = authProvider.registrations[0];
      assert.ok(reg.client_id);
      assert.equal(reg.token_endpoint_auth_method, 'none');
      assert.deepEqual(reg.redirect_uris, [authProvider.redirectUrl]);
      assert.equal(reg.issuer, idp.issuer);
      // ... opened the authorization endpoint with PKCE S256, state and the resource ...
      assert.equal(authProvider.authorizationUrls.length, 1);
      const a = authProvider.authorizationUrls[0];
      assert.equal(`${a.origin}${a.pathname}`, `${idp.issuer}/auth`);
      assert.equal(a.searchParams.get('code_challenge_method'), 'S256');
      assert.match(a.searchParams.get('code_challenge'), /^[A-Za-z0-9_-]{43}$/);
      assert.equal(a.searchParams.get('resource'), mcp.resource);
      assert.equal(a.searchParams.get('scope'), 'mcp:tools');
      assert.equal(a.searchParams.get('state'), authProvider.lastState);
      assert.equal(authProvider.lastCallback.iss, idp.issuer);
      // ... and got a JWT access token for the resource, plus a refresh token.
      const tokens = authProvider.tokens();
      assert.ok(tokens.refresh_token);
      const { payload } = await jwtVerify(tokens.access_token, createLocalJWKSet(await idp.jwks()),
        { issuer: idp.issuer, audience: mcp.resource });
      assert.equal(payload.sub, ANN.email);
      assert.equal(payload.scope, 'mcp:tools');
      assert.equal(payload.client_id, reg.client_id);

      const r = await client.callTool({ name: 'whoami', arguments: { prefix: 'hello ' } });
      assert.equal(r.content[0].text, `hello ${ANN.email} mcp:tools`);
      const unauth = mcp.state.seen.filter((s) => s.path === '/mcp' && !s.auth);
      assert.equal(unauth.length, 1, 'exactly one request went without a token');
    } finally {
      await client.close();
    }

    // The tokens are kept: a second connection needs no sign-in.
    const again = await connectWithOAuth(mcp.resource, authProvider, { fetch });
    try {
      assert.equal(again.signedIn, false);
      assert.equal(authProvider.authorizationUrls.length, 1);
      const r = await again.client.callTool({ name: 'whoami', arguments: { prefix: '' } });
      assert.equal(r.content[0].text, `${ANN.email} mcp:tools`);
    } finally {
      await again.client.close();
    }
    await browser.close();
  });

  test('a denied consent leaves the client without a code', T, async () => {
    const authProvider = await TestOAuthClientProvider.create({
      userAgent: formUserAgent(new Browser(), { email: BOB.email, password: BOB.password, decision: 'deny' }),
    });
    await assert.rejects(connectWithOAuth(mcp.resource, authProvider, { fetch }), /no authorization code.*access_denied/);
    assert.equal(authProvider.lastCallback.error, 'access_denied');
    assert.equal(authProvider.tokens(), undefined);
  });
});

// ---------------------------------------------------------------------------

describe('headless Chromium on the provider pages', () => {
  const missing = chromiumMissing();
  let idp;
  let redirectUri;

  before(async () => {
    if (missing) return;
    redirectUri = `http://127.0.0.1:${await freePort()}/callback`;
    idp = await startIdp({
      name: 'idp-chromium', consent: 'form', accounts: [ANN],
      clients: [{ client_id: 'web', client_secret: 'web-secret', redirect_uris: [redirectUri] }],
    });
  });
  after(async () => { await idp?.stop(); });

  test('sign in and consent in Chromium, with screenshots', T, async (t) => {
    if (missing) { t.skip(missing); return; }
    const ch = await launchChromium();
    try {
      const { verifier, challenge } = pkce();
      const callback = ch.interceptCallback(redirectUri);
      await ch.open(authorizeUrl(idp, {
        client_id: 'web', redirect_uri: redirectUri, state: 'chromium-1', nonce: 'n', code_challenge: challenge, code_challenge_method: 'S256',
      }));
      assert.match(ch.url(), new RegExp(`^${idp.issuer}/interaction/`));
      assert.equal(await ch.page.title(), 'Sign in - Test IdP');
      // A wrong password first: the page says so.
      await ch.fill('#email', ANN.email);
      await ch.fill('#password', 'nope');
      await ch.click('#signin');
      assert.equal(await ch.text('#error'), 'Invalid email or password.');
      await ch.fill('#password', ANN.password);
      const loginShot = await ch.screenshot('idp-login');
      await ch.click('#signin');
      await ch.page.waitForSelector('#allow');
      assert.equal(await ch.page.title(), 'Authorize - Test IdP');
      const consentShot = await ch.screenshot('idp-consent');
      await ch.click('#allow');
      const cb = await within(15_000, callback, 'the redirect to redirect_uri');
      assert.equal(cb.state, 'chromium-1');
      assert.equal(cb.iss, idp.issuer);
      await ch.page.waitForSelector('#done');

      const r = await redeem(idp, { clientId: 'web', secret: 'web-secret', code: cb.code, redirectUri, verifier });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      const { payload } = await jwtVerify(r.body.id_token, createLocalJWKSet(await idp.jwks()), { issuer: idp.issuer, audience: 'web' });
      assert.deepEqual(payload.groups, ANN.groups);

      // Every main-frame navigation was seen, redirects included.
      assert.ok(ch.navigations.some((n) => n.status === 303 && n.location?.startsWith(redirectUri)));
      for (const f of [loginShot, consentShot]) {
        const png = fs.readFileSync(f);
        assert.equal(png.subarray(1, 4).toString(), 'PNG', f);
        assert.ok(png.length > 2000, `${f}: ${png.length} bytes`);
        assert.equal(path.dirname(f), path.resolve(E2E_DIR, '../../build/e2e-artifacts'));
      }
    } finally {
      await ch.close();
    }
  });
});

// ---------------------------------------------------------------------------

describe('provider process lifetime', () => {
  test('stop() ends it and frees the port', T, async () => {
    const idp = await startIdp({ name: 'idp-stop' });
    assert.equal((await fetch(`${idp.issuer}/jwks`)).status, 200);
    await idp.stop();
    assert.equal(idp.alive(), false);
    assert.equal(idp.proc.exitCode, 0);
    await assert.rejects(fetch(`${idp.issuer}/jwks`, { signal: AbortSignal.timeout(3000) }));
  });

  test('the provider exits when the process that started it is killed', T, async () => {
    // A separate Node process starts a provider with lib/idp.mjs, prints its pid, and is
    // then killed with SIGKILL (no exit handlers run): the provider sees its stdin close.
    const env = { ...process.env };
    delete env.NODE_TEST_CONTEXT;
    const script = `import { startIdp } from ${JSON.stringify(path.join(E2E_DIR, 'lib/idp.mjs'))};
      const idp = await startIdp({ name: 'idp-orphan' }); console.log('PID', idp.proc.pid);`;
    const parent = spawn(process.execPath, ['--input-type=module', '-e', script], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    parent.stdout.on('data', (d) => { out += d; });
    parent.stderr.on('data', (d) => { out += d; });
    try {
      const deadline = Date.now() + 15_000;
      while (!/PID \d+/.test(out) && Date.now() < deadline && parent.exitCode === null) await sleep(25);
      const pid = Number(/PID (\d+)/.exec(out)?.[1]);
      assert.ok(pid > 0, `no pid from the parent: ${out}`);
      assert.equal(process.kill(pid, 0), true, 'the provider runs');
      parent.kill('SIGKILL');
      assert.ok(await waitExit(parent, 5000));
      let gone = false;
      for (let i = 0; i < 100 && !gone; i++) {
        try { process.kill(pid, 0); await sleep(50); } catch (e) { gone = e.code === 'ESRCH'; }
      }
      assert.ok(gone, `provider pid ${pid} still running 5 s after its parent died`);
    } finally {
      parent.kill('SIGKILL');
    }
  });
});
