// The official MCP SDK's OAuth client, driven headless: an OAuthClientProvider
// (@modelcontextprotocol/sdk 1.32.2, client/auth.d.ts) that keeps everything in memory
// and hands the authorization URL to a pluggable "user agent" (the form driver in
// lib/browser.mjs with a test account's credentials) instead of opening a browser.
//
// Intended use, exactly as a real MCP client runs it:
//
//   const browser = new Browser();
//   const authProvider = await TestOAuthClientProvider.create({
//     userAgent: formUserAgent(browser, { email: 'ann@example.com', password: 'pw' }),
//   });
//   // 1. the first connection has no token: the route answers 401, the SDK discovers the
//   //    authorization server (RFC 9728 + RFC 8414), registers the client (RFC 7591) and
//   //    calls redirectToAuthorization(url): the user agent signs in and approves, and
//   //    the code that reached redirect_uri is kept; connect() then throws UnauthorizedError.
//   let transport = new StreamableHTTPClientTransport(new URL(routeUrl), { authProvider, fetch: insecureFetch });
//   await assert.rejects(new Client(info).connect(transport), UnauthorizedError);
//   // 2. exchange the code (PKCE code_verifier, resource) for tokens, on the transport
//   //    that got the 401 (it keeps the resource_metadata URL and scope from it)
//   await transport.finishAuth(authProvider.takeCode());
//   // 3. reconnect with a new transport: requests now carry the access token
//   transport = new StreamableHTTPClientTransport(new URL(routeUrl), { authProvider, fetch: insecureFetch });
//   const client = new Client(info); await client.connect(transport);
//
// connectWithOAuth(url, authProvider) below does these three steps. `insecureFetch`
// (lib/browser.mjs) accepts the gateway's self-signed certificate; over plain http any
// fetch works.
import crypto from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { signIn, insecureFetch } from './browser.mjs';
import { freePort } from './harness.mjs';

/**
 * OAuthClientProvider for tests. Records what the SDK did: authorizationUrls (every URL
 * it asked to open), callbacks (what reached redirect_uri), registrations, the current
 * tokens, clientInformation and code verifier.
 */
export class TestOAuthClientProvider {
  /**
   * options: redirectUrl (default http://127.0.0.1:<free port>/callback; nothing listens
   * there: the user agent stops at it), userAgent (async (url: URL, provider) => callback
   * {code, state, iss, error, error_description}; without one, redirectToAuthorization only
   * records the URL), clientName, scope (clientMetadata.scope), clientMetadata (extra
   * fields), clientInformation (pre-registered: {client_id, client_secret?}),
   * clientMetadataUrl (an https client ID metadata document URL), checkState (default true).
   * Use create() to get a free port for the redirect URL.
   */
  constructor({
    redirectUrl, userAgent, clientName = 'mcpgate-e2e', scope, clientMetadata = {}, clientInformation,
    clientMetadataUrl, checkState = true,
  } = {}) {
    if (!redirectUrl) throw new Error('TestOAuthClientProvider: redirectUrl is required (or use create())');
    this._redirectUrl = String(redirectUrl);
    this.userAgent = userAgent;
    this.clientName = clientName;
    this.scope = scope;
    this.extraMetadata = clientMetadata;
    this._clientInformation = clientInformation;
    if (clientMetadataUrl) this.clientMetadataUrl = clientMetadataUrl;
    this.checkState = checkState;
    this._tokens = undefined;
    this._codeVerifier = undefined;
    this._discovery = undefined;
    this.code = undefined;
    this.lastState = undefined;
    this.authorizationUrls = [];
    this.callbacks = [];
    this.savedTokens = [];
    this.registrations = [];
    this.invalidations = [];
  }

  /** A provider whose redirect URL is http://127.0.0.1:<free port>/callback. */
  static async create(opts = {}) {
    const redirectUrl = opts.redirectUrl ?? `http://127.0.0.1:${await freePort()}/callback`;
    return new TestOAuthClientProvider({ ...opts, redirectUrl });
  }

  // --- OAuthClientProvider ---------------------------------------------------

  get redirectUrl() { return this._redirectUrl; }

  get clientMetadata() {
    return {
      client_name: this.clientName,
      redirect_uris: [this._redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
      ...(this.scope ? { scope: this.scope } : {}),
      ...this.extraMetadata,
    };
  }

  state() {
    this.lastState = crypto.randomBytes(16).toString('base64url');
    return this.lastState;
  }

  clientInformation() { return this._clientInformation; }

  saveClientInformation(info) {
    this.registrations.push(info);
    this._clientInformation = info;
  }

  tokens() { return this._tokens; }

  saveTokens(tokens) {
    this.savedTokens.push(tokens);
    this._tokens = tokens;
  }

  saveCodeVerifier(v) { this._codeVerifier = v; }

  codeVerifier() {
    if (!this._codeVerifier) throw new Error('no code verifier saved');
    return this._codeVerifier;
  }

  async redirectToAuthorization(url) {
    const u = new URL(url);
    this.authorizationUrls.push(u);
    if (!this.userAgent) return;
    const cb = await this.userAgent(u, this);
    this.callbacks.push(cb);
    if (this.checkState && cb.state !== this.lastState) {
      throw new Error(`redirect_uri got state ${JSON.stringify(cb.state)}, the client sent ${JSON.stringify(this.lastState)}`);
    }
    if (cb.code) this.code = cb.code;
  }

  invalidateCredentials(scope) {
    this.invalidations.push(scope);
    if (scope === 'all' || scope === 'client') this._clientInformation = undefined;
    if (scope === 'all' || scope === 'tokens') this._tokens = undefined;
    if (scope === 'all' || scope === 'verifier') this._codeVerifier = undefined;
    if (scope === 'all' || scope === 'discovery') this._discovery = undefined;
  }

  saveDiscoveryState(state) { this._discovery = state; }

  discoveryState() { return this._discovery; }

  // --- for tests ------------------------------------------------------------

  /** The authorization code from the last callback (once): for transport.finishAuth(). */
  takeCode() {
    const c = this.code;
    if (!c) {
      const last = this.callbacks.at(-1);
      throw new Error(`no authorization code: ${last ? `redirect_uri got ${JSON.stringify(last.params ?? last)}` : 'the user agent never ran'}`);
    }
    this.code = undefined;
    return c;
  }

  /** The last callback (what reached redirect_uri), or undefined. */
  get lastCallback() { return this.callbacks.at(-1); }
}

/**
 * A user agent for TestOAuthClientProvider: the form driver signs in with these
 * credentials (and presses decision on a consent page, or picks provider) and stops at
 * the provider's redirect URL. Resolves the callback {code, state, iss, error, ...}.
 */
export function formUserAgent(browser, { email, password, decision = 'allow', provider, maxSteps } = {}) {
  return async (url, client) => {
    const page = await signIn(browser, url, { stopAt: client.redirectUrl, email, password, decision, provider, maxSteps });
    return page.callback;
  };
}

/**
 * Connects the official SDK client to url with authProvider, signing in if the server
 * asks for it: connect -> UnauthorizedError -> (the user agent ran) -> finishAuth(code)
 * -> connect again with a new transport. Resolves { client, transport, signedIn }.
 * options: fetch (default insecureFetch), clientInfo, timeoutMs.
 */
export async function connectWithOAuth(url, authProvider, { fetch = insecureFetch, clientInfo, timeoutMs = 15_000 } = {}) {
  const info = clientInfo ?? { name: 'mcpgate-e2e-oauth', version: '1.0.0' };
  const open = async () => {
    const transport = new StreamableHTTPClientTransport(new URL(url), { authProvider, fetch });
    const client = new Client(info, { capabilities: {} });
    try {
      await client.connect(transport, { timeout: timeoutMs });
    } catch (e) {
      await client.close().catch(() => {});
      e.transport = transport;
      throw e;
    }
    return { client, transport };
  };
  let first;
  try {
    return { ...(await open()), signedIn: false };
  } catch (e) {
    if (!(e instanceof UnauthorizedError)) throw e;
    first = e.transport;
  }
  // finishAuth on the transport that got the 401: it knows the resource_metadata URL
  // and scope from that response's WWW-Authenticate.
  await first.finishAuth(authProvider.takeCode());
  return { ...(await open()), signedIn: true };
}

export { UnauthorizedError };
