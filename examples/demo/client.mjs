// A minimal MCP client for the demo: connects through the gateway with the
// official SDK, lists tools and runs a read-only query.
//   NODE_EXTRA_CA_CERTS=demo-state/selfsigned.crt node examples/demo/client.mjs https://localhost:8443/sql
import { createRequire } from 'node:module';
const require = createRequire(new URL('../../tests/e2e/package.json', import.meta.url));
const { Client } = require('@modelcontextprotocol/sdk/client/index.js');
const { StreamableHTTPClientTransport } = require('@modelcontextprotocol/sdk/client/streamableHttp.js');

const url = new URL(process.argv[2] || 'https://localhost:8443/sql');
const client = new Client({ name: 'mcpgate-demo', version: '0.1.0' });
await client.connect(new StreamableHTTPClientTransport(url));
const { tools } = await client.listTools();
console.log('tools:', tools.map((t) => t.name).join(', '));
const res = await client.callTool({ name: 'query', arguments: { sql: 'SELECT name FROM customers LIMIT 3' } });
console.log(res.content[0].text);
await client.close();
