// Signing in through a company OpenID provider (fixtures/oidc-idp.mjs: panva's
// oidc-provider, a real one) configured as an identity_providers entry, with the
// official SDK client on a route behind sign-in:
//   - the gateway's sign-in page shows the provider's button; pressing it leads to the
//     gateway's consent page BEFORE any redirect to the provider (the provider saw no
//     browser request by then: its requests() log, and the browser's own history);
//     then the provider's login, back to /_mcpgate/oidc/callback, the code, the tokens,
//     MCP calls; the provider's `groups` claim is in the identity (tokens list --json or
//     the access log).
//   - the provider unreachable: a sign-in that reaches /_mcpgate/oidc/callback then
//     (the code cannot be redeemed) and a new sign-in both end on a gateway error page;
//     the access token issued before keeps working.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DIRECT, freePort } from './lib/harness.mjs';
import { Browser } from './lib/browser.mjs';
import { startIdp } from './lib/idp.mjs';
import { TestOAuthClientProvider, connectWithOAuth } from './lib/oauth-client.mjs';
import {
  authParams, authorizeUrl, callRoute, cliOk, registerClient, startIdentityGateway, tokenId, waitLogLine,
} from './lib/identity.mjs';

const T = { timeout: 60_000 };
const OLGA = { email: 'olga@corp.example', password: 'olgas-password', name: 'Olga Corp', groups: ['eng', 'ops'] };
const PROVIDER = 'corp';
const DISPLAY = 'Corp SSO';
// What a relying party fetches from the provider by itself (not the browser), and the
// fixture's own control endpoints (requests() itself).
const SERVER_SIDE = /^\/(\.well-known\/openid-configuration|jwks|token|me|userinfo|_fixture\/[a-z]+)$/;

/** The provider's sign-in form on the gateway's sign-in page (a button or a field). */
function providerForm(page) {
  const f = page.forms().find((x) => x.buttons.some((b) => b.name === 'provider' && b.value === PROVIDER))
    ?? page.form({ field: 'provider' });
  const viaButton = f.buttons.some((b) => b.name === 'provider' && b.value === PROVIDER);
  return { form: f, how: viaButton ? { button: { name: 'provider', value: PROVIDER } } : { fields: { provider: PROVIDER } } };
}

describe('sign-in with an OpenID provider', { skip: DIRECT && 'E2E_DIRECT=1: needs the gateway' }, () => {
  let idp;
  let s;
  let gwPort;

  before(async () => {
    gwPort = await freePort();
    idp = await startIdp({
      name: 'oidc-idp',
      accounts: [OLGA],
      clients: [{ client_id: 'mcpgate', client_secret: 'corp-client-secret', redirect_uris: [`http://127.0.0.1:${gwPort}/_mcpgate/oidc/callback`] }],
    });
    s = await startIdentityGateway({
      name: 'oidc-gateway',
      port: gwPort,
      identityProviders: [idp.gatewayProvider({ name: PROVIDER, displayName: DISPLAY })],
    });
  });
  after(async () => {
    try { await s?.stop(); } finally { if (idp?.alive()) await idp.stop(); }
  });

  /**
   * The person's side of a sign-in through the provider, step by step, checking that
   * consent comes before the provider sees the browser. Resolves the callback.
   */
  async function viaProvider(browser, url, stopAt, notes) {
    let page = await browser.get(url, { stopAt });
    assert.equal(page.status, 200, page.bodyText.slice(0, 300));
    assert.equal(new URL(page.url).pathname, '/_mcpgate/signin');
    assert.match(page.bodyText, new RegExp(DISPLAY), 'the provider button shows its display_name');
    const { form, how } = providerForm(page);
    assert.equal(form.action, `${s.issuer}/_mcpgate/signin/provider`);
    for (const name of ['req', 'csrf']) assert.ok(form.has(name), `provider form field ${name}`);
    page = await browser.submit(form, { ...how, stopAt });
    // The consent page (the gateway's, with its decision form) before the provider.
    assert.equal(page.status, 200, `${page.url}: ${page.bodyText.slice(0, 300)}`);
    assert.equal(new URL(page.url).origin, s.issuer);
    assert.ok(page.hasForm({ button: 'decision' }), `consent before the provider: ${page.url}: ${page.bodyText.slice(0, 300)}`);
    assert.equal(page.form({ button: 'decision' }).action, `${s.issuer}/_mcpgate/consent`);
    const idpOrigin = new URL(idp.issuer).origin;
    assert.deepEqual(browser.history.filter((h) => new URL(h.url).origin === idpOrigin), [],
      'the browser has not been to the provider before consent');
    const seen = await idp.requests();
    notes.beforeConsent = seen;
    assert.deepEqual(seen.filter((r) => !SERVER_SIDE.test(r.path)), [],
      `the provider saw browser requests before consent: ${JSON.stringify(seen)}`);
    page = await browser.submit(page.form({ button: 'decision' }), { button: { name: 'decision', value: 'allow' }, stopAt });
    assert.ok(page.url.startsWith(`${idp.issuer}/interaction/`), `at the provider's login: ${page.url} (HTTP ${page.status}): ${page.bodyText?.slice(0, 300)}`);
    page = await browser.submit(page.form({ field: 'password' }),
      { fields: { email: OLGA.email, password: OLGA.password }, button: { name: 'action', value: 'login' }, stopAt });
    assert.equal(page.stopped, true, `${page.url} (HTTP ${page.status}): ${page.bodyText?.slice(0, 300)}`);
    assert.ok(page.hops.some((h) => new URL(h.url).pathname === '/_mcpgate/oidc/callback'), 'back through /_mcpgate/oidc/callback');
    return page.callback;
  }

  let sdk;

  test('the SDK client signs in through the provider, consent first; groups reach the identity', T, async () => {
    const browser = new Browser();
    const notes = {};
    const provider = await TestOAuthClientProvider.create({
      clientName: 'sdk-oidc',
      userAgent: (url, p) => viaProvider(browser, url, p.redirectUrl, notes),
    });
    const { client, signedIn } = await connectWithOAuth(s.url('sql'), provider);
    sdk = { client, provider };
    assert.equal(signedIn, true);
    assert.equal(provider.callbacks[0].iss, s.issuer);
    const tools = await client.listTools();
    assert.ok(tools.tools.some((x) => x.name === 'query'));
    const q = await client.callTool({ name: 'query', arguments: { sql: 'select 1 as one' } });
    assert.notEqual(q.isError, true);

    const at = provider.tokens().access_token;
    const line = await waitLogLine(s.gw, (l) => l.route === 'sql' && l.status === 200 && l.token_id === tokenId(at));
    assert.equal(line.auth, 'oauth');
    assert.equal(line.email, OLGA.email);
    assert.equal(line.client_id, provider.clientInformation().client_id);
    assert.equal(line.user, `oidc:${PROVIDER}:${OLGA.email}`, 'subject oidc:<provider>:<sub> (the fixture\'s sub is the email)');

    const list = JSON.parse((await cliOk(s.config, ['tokens', 'list', '--json'])).stdout);
    const entry = list.find((e) => e.token_id === tokenId(at));
    assert.ok(entry, `tokens list has the access token: ${JSON.stringify(list)}`);
    assert.equal(entry.subject, line.user);
    assert.equal(entry.audience, s.url('sql'));
    const groups = entry.groups ?? line.groups;
    assert.deepEqual(groups, OLGA.groups,
      `the provider's groups claim in tokens list --json or the access log; entry: ${JSON.stringify(entry)}; log: ${JSON.stringify(line)}`);
  });

  test('provider unreachable: the code exchange and a new sign-in end on an error page; issued tokens keep working', T, async (t) => {
    assert.ok(sdk, 'needs the previous test (the SDK client signed in through the provider)');
    const redirectUri = `http://127.0.0.1:${await freePort()}/callback`;
    const callbackUrl = `${s.issuer}/_mcpgate/oidc/callback`;
    const client = await registerClient(s.issuer, { redirectUris: [redirectUri] });

    // 1. The browser comes back from the provider with a code, and the provider is gone.
    const b1 = new Browser();
    const { params } = authParams({ clientId: client.client_id, redirectUri, resource: s.url('sql') });
    let page = await b1.get(authorizeUrl(s.issuer, params), { stopAt: redirectUri });
    const { form, how } = providerForm(page);
    page = await b1.submit(form, { ...how, stopAt: redirectUri });
    page = await b1.submit(page.form({ button: 'decision' }), { button: { name: 'decision', value: 'allow' }, stopAt: redirectUri });
    page = await b1.submit(page.form({ field: 'password' }),
      { fields: { email: OLGA.email, password: OLGA.password }, button: { name: 'action', value: 'login' }, stopAt: callbackUrl });
    assert.equal(page.stopped, true);
    const back = page.callback.url;
    assert.ok(page.callback.code, `the provider sent a code: ${back}`);
    await idp.stop();

    page = await b1.get(back, { stopAt: redirectUri });
    assert.equal(page.stopped, false, `no code for the client: ${JSON.stringify(page.callback?.params)}`);
    assert.ok(page.status >= 500 && page.status < 600, `a gateway error page, got HTTP ${page.status}: ${page.bodyText.slice(0, 300)}`);
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
    t.diagnostic(`code exchange with the provider down: HTTP ${page.status}: ${page.bodyText.slice(0, 200)}`);

    // 2. A new sign-in with the provider down.
    const b2 = new Browser();
    const p2 = authParams({ clientId: client.client_id, redirectUri, resource: s.url('sql2') });
    page = await b2.get(authorizeUrl(s.issuer, p2.params), { stopAt: redirectUri });
    assert.equal(page.status, 200);
    const pf = providerForm(page);
    page = await b2.submit(pf.form, { ...pf.how, stopAt: redirectUri });
    if (page.hasForm({ button: 'decision' })) {
      let err;
      try {
        page = await b2.submit(page.form({ button: 'decision' }), { button: { name: 'decision', value: 'allow' }, stopAt: redirectUri });
      } catch (e) {
        err = e;
      }
      assert.equal(err, undefined, `the gateway sent the browser to the unreachable provider: ${err?.message}`);
    }
    assert.equal(page.stopped, false);
    assert.ok(page.status >= 500 && page.status < 600, `a gateway error page, got HTTP ${page.status} at ${page.url}: ${page.bodyText.slice(0, 300)}`);
    assert.equal(new URL(page.url).origin, s.issuer);
    t.diagnostic(`new sign-in with the provider down: HTTP ${page.status}: ${page.bodyText.slice(0, 200)}`);

    // 3. What was issued before still works.
    const at = sdk.provider.tokens().access_token;
    assert.equal((await callRoute(s.url('sql'), at)).status, 200);
    const tools = await sdk.client.listTools();
    assert.ok(tools.tools.length > 0);
    await sdk.client.close().catch(() => {});
  });
});
