// Starts fixtures/oidc-idp.mjs (a real OpenID provider, panva's oidc-provider) as a
// child process on a free 127.0.0.1 port, and talks to its control endpoints.
//
//   const idp = await startIdp({
//     clients: [{ client_id: 'mcpgate', client_secret: 's3cret', redirect_uris: [cb] }],
//     accounts: [{ email: 'ann@example.com', password: 'pw', name: 'Ann', groups: ['eng'] }],
//     alg: 'ES256',            // ID token alg: ES256 | RS256 | PS256 | EdDSA
//   });
//   idp.issuer               http://127.0.0.1:PORT (no trailing slash)
//   await idp.rotateKeys()   new signing keys (new kids); old ones stay published unless {keepOld: false}
//   await idp.stop()         SIGTERM, bounded wait, SIGKILL; throws if it is still running after
//
// See the header of fixtures/oidc-idp.mjs for every option, the pages and the endpoints.
import fs from 'node:fs';
import path from 'node:path';
import { E2E_DIR, artifactDir, startChild, tmpDir, sleep } from './harness.mjs';

const FIXTURE = path.join(E2E_DIR, 'fixtures/oidc-idp.mjs');

async function fetchJson(url, init = {}) {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  if (!res.ok) throw new Error(`${init.method ?? 'GET'} ${url}: HTTP ${res.status}: ${text.slice(0, 300)}`);
  return JSON.parse(text);
}

/**
 * options: clients, accounts, alg (default ES256), algs (more key types in the JWKS),
 * consent ('auto' | 'form'), registration (open RFC 7591 registration), resources
 * ({url: {scope}}: JWT access tokens for these RFC 8707 resource indicators), name
 * (artifact folder), readyTimeoutMs.
 * Returns { issuer, port, proc, discovery(), jwks(), keys(), rotateKeys({keepOld}),
 *           setAccounts(list), setClients(list), requests(), gatewayProvider(opts),
 *           gatewayJwtIssuer(opts), output(), alive(), kill(), stop() }.
 */
export async function startIdp({
  clients = [], accounts = [], alg = 'ES256', algs, consent = 'auto', registration = false, resources,
  name = 'idp', readyTimeoutMs = 15_000,
} = {}) {
  const dir = artifactDir(name);
  const tmp = tmpDir('mcpgate-idp-');
  const config = { clients, accounts, alg, algs, consent, registration, resources };
  const configPath = path.join(tmp, 'idp.json');
  fs.writeFileSync(configPath, JSON.stringify(config, null, 2));
  fs.writeFileSync(path.join(dir, 'idp.json'), JSON.stringify(config, null, 2));

  const { handle } = startChild('oidc-idp', process.execPath,
    [FIXTURE, '--config', configPath, '--port', '0', '--parent-watch'], { dir, stdin: 'pipe' });

  let issuer;
  const deadline = Date.now() + readyTimeoutMs;
  for (;;) {
    const ready = handle.lines.map((l) => /^READY (http:\/\/127\.0\.0\.1:\d+)$/.exec(l)).find(Boolean);
    if (ready) { issuer = ready[1]; break; }
    if (!handle.alive() || Date.now() >= deadline) {
      await handle.kill();
      throw new Error(`oidc-idp did not print READY within ${readyTimeoutMs} ms (alive: ${handle.alive()}):\n${handle.output().slice(-3000)}`);
    }
    await sleep(25);
  }
  const port = Number(new URL(issuer).port);
  const post = (what, body) => fetchJson(`${issuer}/_fixture/${what}`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body ?? {}),
  });

  return {
    issuer,
    port,
    proc: handle.proc,
    dir,
    config,
    /** The OpenID discovery document. */
    discovery: () => fetchJson(`${issuer}/.well-known/openid-configuration`),
    /** The published JWKS (public keys). */
    jwks: () => fetchJson(`${issuer}/jwks`),
    /** { keys, signing: {alg: kid} }: which kid signs for each alg now. */
    keys: () => fetchJson(`${issuer}/_fixture/keys`),
    /** New keys for every alg (new kids, used from now on). Resolves { kids, keys }. */
    rotateKeys: ({ keepOld = true } = {}) => post('rotate', { keepOld }),
    setAccounts: (list) => post('accounts', list),
    /** Replaces the clients (e.g. once the gateway's redirect URI is known). */
    async setClients(list) {
      const r = await post('clients', list);
      clients = list;
      return r;
    },
    /** Every request the provider received: [{ method, path, query }]. */
    requests: () => fetchJson(`${issuer}/_fixture/requests`),
    /**
     * An identity_providers entry for the gateway's config (docs/config.md) naming this
     * provider and one of its clients (default the first); the secret is written to a
     * 0600 file, as the gateway takes no inline secrets.
     */
    gatewayProvider({ name: providerName = 'testidp', clientId, displayName, scopes = ['openid', 'email', 'profile', 'groups'],
      tokenEndpointAuthMethod } = {}) {
      const c = clientId ? clients.find((x) => x.client_id === clientId) : clients[0];
      if (!c) throw new Error(`gatewayProvider: no client ${clientId ?? '(none configured)'}`);
      const secretFile = path.join(tmp, `${c.client_id}.secret`);
      fs.writeFileSync(secretFile, c.client_secret ?? '', { mode: 0o600 });
      const entry = { name: providerName, issuer, client_id: c.client_id, client_secret_file: secretFile, scopes };
      if (displayName) entry.display_name = displayName;
      if (tokenEndpointAuthMethod) entry.token_endpoint_auth_method = tokenEndpointAuthMethod;
      return entry;
    },
    /** A jwt_issuers entry for the gateway: tokens from this provider, keys from its JWKS. */
    gatewayJwtIssuer({ audience } = {}) {
      return { issuer, jwks_url: `${issuer}/jwks`, ...(audience ? { audience } : {}) };
    },
    output: handle.output,
    alive: handle.alive,
    kill: handle.kill,
    async stop() {
      await handle.stop();
      if (handle.alive()) throw new Error(`oidc-idp (pid ${handle.proc.pid}) still running after stop()`);
      fs.rmSync(tmp, { recursive: true, force: true });
    },
  };
}
