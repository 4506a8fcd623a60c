import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';

/** @param {string} name */
export function greet(name) {
  return `Hello, ${name.trim() || 'world'}!`;
}

/** Builds the server with its tools; the caller connects it to a transport. */
export function createServer() {
  const server = new McpServer({ name: 'hello-world', version: '1.0.0' });

  server.registerTool(
    'hello',
    {
      title: 'Hello',
      description: 'Greets someone by name.',
      inputSchema: { name: z.string().max(200).describe('Who to greet') },
    },
    async ({ name }) => ({ content: [{ type: 'text', text: greet(name) }] }),
  );

  server.registerTool(
    'echo',
    {
      title: 'Echo',
      description: 'Returns the given text unchanged.',
      inputSchema: { text: z.string().describe('Text to send back') },
    },
    async ({ text }) => ({ content: [{ type: 'text', text }] }),
  );

  return server;
}
