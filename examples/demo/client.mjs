// A scripted MCP client for the demo: the official SDK runs the whole OAuth
// flow against the gateway (401 -> metadata discovery -> dynamic registration
// -> authorize with PKCE -> the sign-in form -> consent -> token), then lists
// tools and runs a read-only query. The browser part is played by the
// headless form driver from the end-to-end tests, with the demo account.
//   node examples/demo/client.mjs https://localhost:8443/sql demo@example.com PASSWORD
// (`make demo` prints the account's password when it creates it.)
import { createRequire } from 'node:module';

const require = createRequire(new URL('../../tests/e2e/package.json', import.meta.url));
const { Browser } = await import(new URL('../../tests/e2e/lib/browser.mjs', import.meta.url));
const { TestOAuthClientProvider, formUserAgent, connectWithOAuth } = await import(
  new URL('../../tests/e2e/lib/oauth-client.mjs', import.meta.url));
require('@modelcontextprotocol/sdk/client/index.js'); // fails early with a clear message if missing

const [url = 'https://localhost:8443/sql', email = process.env.MCPGATE_DEMO_EMAIL || 'demo@example.com',
  password = process.env.MCPGATE_DEMO_PASSWORD] = process.argv.slice(2);
if (!password) {
  console.error('usage: node examples/demo/client.mjs URL EMAIL PASSWORD  (make demo printed the password)');
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
await client.close();
