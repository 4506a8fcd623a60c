/**
 * calculator 1.0.0 → 2.0.0: the operands were renamed from a/b to x/y and the structured result
 * from `result` to `value`. Clients built against 1.0.0 (pinned with X-Mcpship-Service-Version:
 * 1.0.0) keep sending a/b and reading `result`; the gateway migrates their requests forward and
 * the answers (and the tool list they see) back.
 */
type Message = Record<string, any>;
type Tool = Record<string, any>;

const OPERATIONS = new Set(['add', 'subtract', 'multiply', 'divide']);

function renameKeys(obj: Record<string, unknown> | undefined, names: Record<string, string>): void {
  if (!obj || typeof obj !== 'object') return;
  for (const [from, to] of Object.entries(names)) {
    if (from in obj) {
      obj[to] = obj[from];
      delete obj[from];
    }
  }
}

function renameRequired(schema: Record<string, any> | undefined, names: Record<string, string>): void {
  if (Array.isArray(schema?.required)) schema.required = schema.required.map((n: string) => names[n] ?? n);
}

const OPERANDS_UP = { a: 'x', b: 'y' };
const OPERANDS_DOWN = { x: 'a', y: 'b' };
const RESULT_UP = { result: 'value' };
const RESULT_DOWN = { value: 'result' };

const isCalculation = (ctx: { method?: string; toolName?: string }) => ctx.method === 'tools/call' && OPERATIONS.has(ctx.toolName ?? '');

export default {
  from: '1.0.0',
  to: '2.0.0',
  description: 'operands a/b renamed to x/y; structured result `result` renamed to `value`',
  requestForward(msg: Message, ctx: { method?: string; toolName?: string }): Message {
    if (isCalculation(ctx)) renameKeys(msg.params?.arguments, OPERANDS_UP);
    return msg;
  },
  requestInverse(msg: Message, ctx: { method?: string; toolName?: string }): Message {
    if (isCalculation(ctx)) renameKeys(msg.params?.arguments, OPERANDS_DOWN);
    return msg;
  },
  responseBackward(msg: Message, ctx: { method?: string; toolName?: string }): Message {
    if (isCalculation(ctx)) renameKeys(msg.result?.structuredContent, RESULT_DOWN);
    return msg;
  },
  responseInverse(msg: Message, ctx: { method?: string; toolName?: string }): Message {
    if (isCalculation(ctx)) renameKeys(msg.result?.structuredContent, RESULT_UP);
    return msg;
  },
  toolsListBackward(tools: Tool[]): Tool[] {
    for (const tool of tools) {
      if (!OPERATIONS.has(tool.name)) continue;
      renameKeys(tool.inputSchema?.properties, OPERANDS_DOWN);
      renameRequired(tool.inputSchema, OPERANDS_DOWN);
      renameKeys(tool.outputSchema?.properties, RESULT_DOWN);
      renameRequired(tool.outputSchema, RESULT_DOWN);
    }
    return tools;
  },
};
