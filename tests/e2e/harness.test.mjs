// The harness helpers the identity tests build on, proved against the real things:
//   - startPostgres() over scripts/pg: a real PostgreSQL answers on the DSN's port (the
//     protocol's SSLRequest, and psql when installed), and stop() ends it. Skipped, with
//     the reason, while scripts/pg is not there (E2E_PG_SCRIPT may name one elsewhere).
//   - identityConfig() with the provider fixture's gatewayProvider() / gatewayJwtIssuer()
//     entries, a gateway port chosen before the start (the origin a provider's redirect
//     URI names) and public: false: the real mcpgate accepts the configuration and serves
//     on that port.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import {
  DIRECT, freePort, identityConfig, postgresUnavailable, postMcp, startGateway, startPostgres, startSqlite, tmpDir, within,
} from './lib/harness.mjs';
import { startIdp } from './lib/idp.mjs';

const T = { timeout: 120_000 };

/** PostgreSQL's SSLRequest: a server answers one byte, 'S' or 'N'. */
function sslProbe(port) {
  return within(5000, new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    s.once('connect', () => s.write(Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])));
    s.once('data', (d) => { s.destroy(); resolve(d.subarray(0, 1).toString('latin1')); });
    s.once('error', reject);
  }), 'postgres SSLRequest');
}

function havePsql() {
  try { execFileSync('psql', ['--version'], { stdio: 'ignore', timeout: 5000 }); return true; } catch { return false; }
}

describe('startPostgres', () => {
  test('a PostgreSQL server on the DSN, gone after stop()', T, async (t) => {
    const why = postgresUnavailable();
    if (why) { t.skip(why); return; }
    const pg = await startPostgres({ name: 'postgres-harness' });
    let stopped = false;
    try {
      assert.match(pg.dsn, /^postgresql:\/\/postgres@127\.0\.0\.1:\d+\/postgres$/);
      assert.equal(pg.port, Number(new URL(pg.dsn).port));
      assert.ok(['S', 'N'].includes(await sslProbe(pg.port)), 'the server speaks the PostgreSQL protocol');
      if (havePsql()) {
        const out = execFileSync('psql', [pg.dsn, '-AtXc', 'select current_user, current_database()'],
          { encoding: 'utf8', timeout: 15_000 });
        assert.equal(out.trim(), 'postgres|postgres');
      } else {
        t.diagnostic('psql is not installed: checked with the protocol probe only');
      }
      await pg.stop();
      stopped = true;
      await assert.rejects(sslProbe(pg.port));
      assert.equal(fs.existsSync(pg.dir), false, 'the cluster directory is removed');
    } finally {
      if (!stopped) await pg.stop();
    }
  });
});

describe('identity configuration for the gateway', () => {
  let idp;
  let upstream;
  let gw;
  let gwPort;

  before(async () => {
    if (DIRECT) return;
    gwPort = await freePort();
    upstream = await startSqlite('http', { name: 'sqlite-identity-config' });
    idp = await startIdp({
      name: 'idp-gateway-config',
      clients: [{ client_id: 'mcpgate', client_secret: 'from-a-file', redirect_uris: [`http://127.0.0.1:${gwPort}/_mcpgate/oidc/callback`] }],
    });
  });
  after(async () => {
    await gw?.stop();
    await upstream?.stop();
    await idp?.stop();
  });

  test('the gateway accepts identity blocks built from the provider fixture', T, async (t) => {
    if (DIRECT) { t.skip('E2E_DIRECT=1: needs the gateway'); return; }
    const provider = idp.gatewayProvider({ name: 'testidp', displayName: 'Test IdP' });
    assert.deepEqual(provider, {
      name: 'testidp', issuer: idp.issuer, client_id: 'mcpgate', client_secret_file: provider.client_secret_file,
      scopes: ['openid', 'email', 'profile', 'groups'], display_name: 'Test IdP',
    });
    assert.equal(fs.readFileSync(provider.client_secret_file, 'utf8'), 'from-a-file');
    assert.equal(fs.statSync(provider.client_secret_file).mode & 0o777, 0o600);
    const extra = identityConfig({
      identityProviders: [provider],
      jwtIssuers: [idp.gatewayJwtIssuer({ audience: 'mcpgate-tests' })],
      store: { sqlite: path.join(tmpDir('mcpgate-store-'), 'identity.db') },
      oauth: { access_token_ttl: '5m' },
    });
    assert.deepEqual(Object.keys(extra), ['identity_providers', 'jwt_issuers', 'store', 'oauth']);
    gw = await startGateway({
      name: 'gateway-identity-config',
      port: gwPort,
      routes: [
        { name: 'open', to: upstream.url },
        { name: 'closed', to: upstream.url, public: false },
      ],
      extra,
    });
    assert.equal(gw.port, gwPort);
    assert.equal(gw.url, `http://127.0.0.1:${gwPort}`);
    const yaml = fs.readFileSync(gw.configPath, 'utf8');
    assert.match(yaml, /allow_public_unauthenticated_access: false/);
    assert.match(yaml, /identity_providers:\n {2}- name: "testidp"/);
    const r = await postMcp(gw.routeUrl('open'), {
      jsonrpc: '2.0', id: 1, method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'e2e', version: '1' } },
    });
    assert.equal(r.status, 200, r.text.slice(0, 300));
    assert.equal(r.messages[0]?.result?.serverInfo?.name, 'mcp-sqlite');
  });
});
