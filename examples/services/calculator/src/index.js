import { createApp } from './http.js';

// mcpship's runner passes the port in PORT; the MCP endpoint is /mcp (mcp.json: http.path).
const port = Number(process.env.PORT ?? 3000);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`calculator: PORT must be an integer 0-65535, got ${process.env.PORT}`);
  process.exit(1);
}
const { app, closeAll } = createApp('/mcp');
const listener = app.listen(port, '127.0.0.1', (err) => {
  if (err) throw err;
  const address = listener.address();
  const bound = typeof address === 'object' && address ? address.port : port;
  console.error(`calculator MCP server listening on http://127.0.0.1:${bound}/mcp`);
});
for (const signal of /** @type {const} */ (['SIGINT', 'SIGTERM'])) {
  process.once(signal, async () => {
    await closeAll();
    listener.closeAllConnections();
    listener.close(() => process.exit(0));
  });
}
