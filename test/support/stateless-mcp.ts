import type { Express } from 'express';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';

/**
 * Serves POST `route` the SDK's stateless way: each request gets a fresh server from `build` on a
 * transport without sessions that answers in JSON, both closed with the response.
 */
export function serveStatelessMcp(app: Express, route: string, build: () => McpServer): void {
  app.post(route, async (req, res) => {
    const server = build();
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on('close', () => {
      void transport.close();
      void server.close();
    });
    await server.connect(transport);
    await transport.handleRequest(req, res, req.body);
  });
}
