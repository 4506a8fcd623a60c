import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { createServer } from './server.js';

// stdout carries JSON-RPC; anything for humans goes to stderr.
const server = createServer();
await server.connect(new StdioServerTransport());
console.error('hello-world MCP server ready on stdio');
