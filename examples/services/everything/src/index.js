import { createServer } from 'node:http';
import { createApp } from './http.js';

// mcpship's runner passes the port in PORT; the MCP endpoint is /mcp (mcp.json: http.path).
const port = Number(process.env.PORT ?? 3000);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`everything: PORT must be an integer 0-65535, got ${process.env.PORT}`);
  process.exit(1);
}
const { listener, closeAll } = createApp('/mcp');
const server = createServer(listener);
server.listen(port, '127.0.0.1', () => {
  const address = server.address();
  const bound = typeof address === 'object' && address ? address.port : port;
  console.error(`everything MCP server listening on http://127.0.0.1:${bound}/mcp`);
});
for (const signal of /** @type {const} */ (['SIGINT', 'SIGTERM'])) {
  process.once(signal, async () => {
    await closeAll();
    server.closeAllConnections();
    server.close(() => process.exit(0));
  });
}
