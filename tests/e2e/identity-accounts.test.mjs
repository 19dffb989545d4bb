// Callers without a person: service accounts made with the real CLI, and the
// client_credentials grant of a confidential client pre-registered in the config.
//   - `mcpgate service-accounts create NAME --groups bots --expires 1d` prints the token
//     once (stdout, one line); it works on the routes (the access log says
//     "auth":"service_account" with its token_id); `service-accounts list --json` shows
//     it; `service-accounts revoke NAME` ends it: the next request is refused within 1 s.
//   - client_credentials with client_secret_basic and client_secret_post and `resource`:
//     a token bound to that route (refused on another), no refresh token, "auth":"client"
//     with the client's id in the log; without `resource`: invalid_target.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { DIRECT, tmpDir } from './lib/harness.mjs';
import {
  TOKEN_PATH, callRoute, cli, cliOk, pollUntil, post, startIdentityGateway, tokenId, waitLogLine,
} from './lib/identity.mjs';

const T = { timeout: 60_000 };
const SECRET = 'cc-secret-9f8e7d6c5b4a39281706';

describe('service accounts and client_credentials', { skip: DIRECT && 'E2E_DIRECT=1: needs the gateway' }, () => {
  let s;

  before(async () => {
    const secretFile = path.join(tmpDir('mcpgate-secret-'), 'reporter.secret');
    fs.writeFileSync(secretFile, SECRET, { mode: 0o600 });
    s = await startIdentityGateway({
      name: 'accounts-gateway',
      oauth: {
        clients: [{ client_id: 'reporter', client_secret_file: secretFile, grant_types: ['client_credentials'], groups: ['reports'] }],
      },
    });
  });
  after(async () => { await s?.stop(); });

  test('service-accounts create / list / revoke', T, async () => {
    const created = await cliOk(s.config, ['service-accounts', 'create', 'ci-bot', '--groups', 'bots', '--expires', '1d']);
    const lines = created.stdout.split('\n').filter(Boolean);
    assert.equal(lines.length, 1, `stdout is the token alone: ${JSON.stringify(created.stdout)}`);
    const token = lines[0];
    assert.match(token, /^mcpg_sa_[A-Za-z0-9_-]{20,}$/);
    assert.doesNotMatch(created.stderr, new RegExp(token), 'the token is printed once');
    const createdAt = Math.floor(Date.now() / 1000);

    for (const route of ['sql', 'sql2']) {
      const r = await callRoute(s.url(route), token);
      assert.equal(r.status, 200, `${route}: ${r.text.slice(0, 200)}`);
    }
    const line = await waitLogLine(s.gw, (l) => l.route === 'sql' && l.status === 200 && l.token_id === tokenId(token));
    assert.equal(line.auth, 'service_account');
    assert.match(line.user, /ci-bot/);

    const list = JSON.parse((await cliOk(s.config, ['service-accounts', 'list', '--json'])).stdout);
    const entry = list.find((e) => e.name === 'ci-bot');
    assert.ok(entry, JSON.stringify(list));
    assert.equal(entry.token_id, tokenId(token));
    assert.deepEqual(entry.groups, ['bots']);
    assert.equal(entry.state, 'active');
    assert.ok(Math.abs(entry.expires_at - (createdAt + 86400)) <= 120, `expires_at ${entry.expires_at}, created ${createdAt}`);
    assert.equal(JSON.stringify(list).includes(token), false, 'the list never shows the token');

    const dup = await cli(s.config, ['service-accounts', 'create', 'ci-bot']);
    assert.notEqual(dup.code, 0, 'a second active account of the same name is refused');

    await cliOk(s.config, ['service-accounts', 'revoke', 'ci-bot']);
    const since = Date.now();
    const refused = await pollUntil(async () => {
      const r = await callRoute(s.url('sql'), token);
      return r.status === 401 ? r : null;
    }, { ms: 3000, intervalMs: 10 });
    assert.ok(refused, 'still accepted 3 s after the revocation');
    const ms = Date.now() - since;
    assert.ok(ms < 1000, `refused after ${ms} ms`);
    assert.equal(refused.challenge?.params.error, 'invalid_token');
    const r2 = await callRoute(s.url('sql2'), token);
    assert.equal(r2.status, 401);
    const after = JSON.parse((await cliOk(s.config, ['service-accounts', 'list', '--json'])).stdout);
    assert.equal(after.find((e) => e.name === 'ci-bot')?.state, 'revoked');
  });

  test('client_credentials with resource: a token for that route only', T, async () => {
    const url = s.url('sql');
    const basic = await post(s.issuer, TOKEN_PATH, { grant_type: 'client_credentials', resource: url }, { basic: ['reporter', SECRET] });
    assert.equal(basic.status, 200, basic.text);
    assert.match(basic.headers.get('cache-control') ?? '', /no-store/);
    assert.match(basic.json.access_token, /^mcpg_at_/);
    assert.equal(basic.json.token_type.toLowerCase(), 'bearer');
    assert.equal(typeof basic.json.expires_in, 'number');
    assert.equal(basic.json.refresh_token, undefined, 'no refresh token for client_credentials (RFC 6749 §4.4.3)');

    const viaPost = await post(s.issuer, TOKEN_PATH, {
      grant_type: 'client_credentials', resource: url, client_id: 'reporter', client_secret: SECRET,
    });
    assert.equal(viaPost.status, 200, viaPost.text);
    assert.notEqual(viaPost.json.access_token, basic.json.access_token);

    const at = basic.json.access_token;
    const r = await callRoute(url, at);
    assert.equal(r.status, 200, r.text.slice(0, 200));
    const line = await waitLogLine(s.gw, (l) => l.status === 200 && l.token_id === tokenId(at));
    assert.equal(line.auth, 'client');
    assert.equal(line.client_id, 'reporter');
    const other = await callRoute(s.url('sql2'), at);
    assert.equal(other.status, 401);
    assert.equal(other.challenge?.params.error, 'invalid_token');

    const noResource = await post(s.issuer, TOKEN_PATH, { grant_type: 'client_credentials' }, { basic: ['reporter', SECRET] });
    assert.equal(noResource.status, 400, noResource.text);
    assert.equal(noResource.json?.error, 'invalid_target');
  });
});
