// A scripted MCP client for the demo: the official SDK runs the whole OAuth
// flow against the gateway (401 -> metadata discovery -> dynamic registration
// -> authorize with PKCE -> the sign-in form -> consent -> token), then lists
// tools and runs a read-only query; with --execute it also calls `execute`,
// which the demo's policy keeps for the admins group. The browser part is
// played by the headless form driver from the end-to-end tests.
//   node examples/demo/client.mjs https://localhost:8443/sql demo@example.com PASSWORD [--execute]
// (`make demo` prints each account's password when it creates it.) Exit 0
// when everything asked for was done, 3 when the gateway refused `execute`.
import { createRequire } from 'node:module';

const require = createRequire(new URL('../../tests/e2e/package.json', import.meta.url));
const { Browser } = await import(new URL('../../tests/e2e/lib/browser.mjs', import.meta.url));
const { TestOAuthClientProvider, formUserAgent, connectWithOAuth } = await import(
  new URL('../../tests/e2e/lib/oauth-client.mjs', import.meta.url));
require('@modelcontextprotocol/sdk/client/index.js'); // fails early with a clear message if missing

const args = process.argv.slice(2);
const execute = args.includes('--execute');
const [url = 'https://localhost:8443/sql', email = process.env.MCPGATE_DEMO_EMAIL || 'demo@example.com',
  password = process.env.MCPGATE_DEMO_PASSWORD] = args.filter((a) => a !== '--execute');
if (!password || args.some((a) => a.startsWith('--') && a !== '--execute')) {
  console.error('usage: node examples/demo/client.mjs URL EMAIL PASSWORD [--execute]  (make demo printed the password)');
  process.exit(2);
}
const browser = new Browser();
const authProvider = await TestOAuthClientProvider.create({
  userAgent: formUserAgent(browser, { email, password }),
  clientName: 'mcpgate demo client',
});
const { client } = await connectWithOAuth(url, authProvider, { clientInfo: { name: "mcpgate-demo", version: "0.1.0" } });
console.log('signed in as', email, '- token bound to', url);
const { tools } = await client.listTools();
console.log('tools:', tools.map((t) => t.name).join(', '));
const res = await client.callTool({ name: 'query', arguments: { sql: 'SELECT name FROM customers LIMIT 3' } });
console.log(res.content[0].text);
let status = 0;
if (execute) {
  // A write only admins may make; harmless if it is allowed.
  try {
    const w = await client.callTool({ name: 'execute', arguments: { sql: 'CREATE TABLE IF NOT EXISTS demo_notes (note TEXT)' } });
    console.log('execute: allowed:', w.content[0].text);
  } catch (e) {
    // A tool the caller may not use is refused as if it did not exist (-32602);
    // data.decision_id finds the audit record.
    console.log(`execute: refused by the gateway: ${e.message}` +
      (e.data?.decision_id ? ` (decision ${e.data.decision_id})` : ''));
    status = 3;
  }
}
await client.close();
process.exit(status);
