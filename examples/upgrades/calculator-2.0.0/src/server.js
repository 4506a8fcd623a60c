import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';

/** @typedef {'add' | 'subtract' | 'multiply' | 'divide'} Operation */

/** @type {Record<Operation, { title: string, description: string, fn: (a: number, b: number) => number }>} */
export const OPERATIONS = {
  add: { title: 'Add', description: 'Returns a + b.', fn: (a, b) => a + b },
  subtract: { title: 'Subtract', description: 'Returns a - b.', fn: (a, b) => a - b },
  multiply: { title: 'Multiply', description: 'Returns a * b.', fn: (a, b) => a * b },
  divide: { title: 'Divide', description: 'Returns a / b; b must not be 0.', fn: (a, b) => a / b },
};

/**
 * @param {Operation} op
 * @param {number} a
 * @param {number} b
 * @returns {{ ok: true, value: number } | { ok: false, error: string }}
 */
export function calculate(op, a, b) {
  if (op === 'divide' && b === 0) return { ok: false, error: 'Division by zero' };
  const value = OPERATIONS[op].fn(a, b);
  if (!Number.isFinite(value)) return { ok: false, error: `${op}(${a}, ${b}) is not a finite number` };
  return { ok: true, value };
}

/** Builds one server (one per MCP session) with the four tools. */
export function createServer() {
  const server = new McpServer({ name: 'calculator', version: '2.0.0' });
  for (const op of /** @type {Operation[]} */ (Object.keys(OPERATIONS))) {
    const { title, description } = OPERATIONS[op];
    server.registerTool(
      op,
      {
        title,
        description,
        inputSchema: { x: z.number().describe('First operand'), y: z.number().describe('Second operand') },
        outputSchema: { value: z.number() },
      },
      async ({ x, y }) => {
        const r = calculate(op, x, y);
        return r.ok
          ? { content: [{ type: 'text', text: String(r.value) }], structuredContent: { value: r.value } }
          : { content: [{ type: 'text', text: r.error }], isError: true };
      },
    );
  }
  return server;
}
