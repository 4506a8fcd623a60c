import { randomBytes } from 'node:crypto';
import {
  CLIENT_CAPABILITIES_META_KEY,
  McpServer,
  ProtocolError,
  ProtocolErrorCode,
  ResourceTemplate,
  createRequestStateCodec,
  fromJsonSchema,
  inputRequired,
  inputResponse,
} from '@modelcontextprotocol/server';
import { WATCHED_URI } from './hub.js';
import { PNG_BASE64, WAV_BASE64 } from './media.js';

/** @typedef {import('@modelcontextprotocol/server').ServerContext} ServerContext */
/** @typedef {import('@modelcontextprotocol/server').CallToolResult} CallToolResult */
/** @typedef {import('@modelcontextprotocol/server').ClientCapabilities} ClientCapabilities */
/** @typedef {import('@modelcontextprotocol/server').InputRequests} InputRequests */
/** @typedef {{ tool: string, round: number }} FlowState */

export const SERVER_INFO = { name: 'everything', version: '1.0.0' };

/**
 * Cache hints (2026-07-28, SEP-2549) for the results the SDK builds itself. Lists are the same for
 * every client, so shared caches may keep them briefly; a per-resource hint below overrides reads.
 */
const CACHE_HINTS = {
  'tools/list': { ttlMs: 10_000, cacheScope: /** @type {const} */ ('public') },
  'prompts/list': { ttlMs: 10_000, cacheScope: /** @type {const} */ ('public') },
  'resources/list': { ttlMs: 10_000, cacheScope: /** @type {const} */ ('public') },
  'resources/templates/list': { ttlMs: 10_000, cacheScope: /** @type {const} */ ('public') },
  'resources/read': { ttlMs: 0, cacheScope: /** @type {const} */ ('private') },
  'server/discover': { ttlMs: 60_000, cacheScope: /** @type {const} */ ('public') },
};

/**
 * requestState is signed (HMAC) so a tampered echo is refused with -32602 before any handler runs.
 * The key lives and dies with the process: a multi-round flow must come back to the instance (and
 * so the service version) that started it, which is exactly what a gateway in front must ensure.
 * @type {import('@modelcontextprotocol/server').RequestStateCodec<FlowState>}
 */
const stateCodec = createRequestStateCodec({ key: randomBytes(32) });

const text = (/** @type {string} */ value) => ({ type: /** @type {const} */ ('text'), text: value });
const sleep = (/** @type {number} */ ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The client's capabilities: per request in 2026-07-28 (the `_meta` envelope), from `initialize`
 * in a 2025 session.
 * @param {McpServer} server @param {ServerContext} ctx @returns {ClientCapabilities}
 */
function clientCapabilities(server, ctx) {
  const envelope = /** @type {Record<string, ClientCapabilities | undefined>} */ (ctx.mcpReq.envelope ?? {});
  return envelope[CLIENT_CAPABILITIES_META_KEY] ?? server.server.getClientCapabilities() ?? {};
}

/**
 * An object schema of required string fields, as plain JSON Schema (the SDK validates with it and
 * lists it as is).
 * @template {string} K
 * @param {Record<K, string>} fields name → description
 * @returns {import('@modelcontextprotocol/server').StandardSchemaWithJSON<Record<K, string>, Record<K, string>>}
 */
function stringFields(fields) {
  const properties = Object.fromEntries(Object.entries(fields).map(([name, description]) => [name, { type: 'string', description }]));
  return fromJsonSchema({ type: 'object', properties, required: Object.keys(fields) });
}

/** Completion values per prompt argument (completion/complete on ref/prompt). */
const PROMPT_COMPLETIONS = /** @type {Record<string, Record<string, string[]>>} */ ({
  test_prompt_with_arguments: { arg1: ['test', 'testing', 'tested', 'value'], arg2: ['world', 'word', 'work'] },
});
/** Completion values per resource template variable (completion/complete on ref/resource). */
const TEMPLATE_COMPLETIONS = /** @type {Record<string, Record<string, string[]>>} */ ({
  'test://template/{id}/data': { id: ['1', '2', '3', '123'] },
});

/** The answer an embedded elicitation got, as the text the tool returns. */
function describeElicitation(/** @type {import('@modelcontextprotocol/server').InputResponseView} */ view) {
  return view.kind === 'elicit' ? `action=${view.action}, content=${JSON.stringify(view.content ?? {})}` : 'no answer';
}

const nameSchema = { type: /** @type {const} */ ('object'), properties: { name: { type: /** @type {const} */ ('string') } }, required: ['name'] };
const askName = (/** @type {string} */ message) => inputRequired.elicit({ message, requestedSchema: nameSchema });
const SAMPLING_FRANCE = inputRequired.createMessage({
  messages: [{ role: 'user', content: text('What is the capital of France?') }],
  maxTokens: 100,
});

/** The text of a sampling answer, whatever content shape the client chose. */
function samplingText(/** @type {import('@modelcontextprotocol/server').InputResponseView} */ view) {
  if (view.kind !== 'sampling') return undefined;
  const content = Array.isArray(view.result.content) ? view.result.content[0] : view.result.content;
  return content?.type === 'text' ? content.text : JSON.stringify(content);
}

/** An input schema using the 2020-12 vocabulary ($defs, $anchor, allOf/anyOf, if/then/else), listed unchanged. */
const JSON_SCHEMA_2020_12 = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  type: /** @type {const} */ ('object'),
  $defs: {
    address: { $anchor: 'addressDef', type: 'object', properties: { street: { type: 'string' }, city: { type: 'string' } } },
  },
  properties: {
    name: { type: 'string' },
    address: { $ref: '#/$defs/address' },
    contactMethod: { type: 'string', enum: ['phone', 'email'] },
    phone: { type: 'string' },
    email: { type: 'string' },
  },
  allOf: [{ anyOf: [{ required: ['phone'] }, { required: ['email'] }] }],
  if: { properties: { contactMethod: { const: 'phone' } }, required: ['contactMethod'] },
  then: { required: ['phone'] },
  else: { required: ['email'] },
  additionalProperties: false,
};

/** A string parameter mirrored into a header (SEP-2243); `x-mcp-header` is outside the JSON Schema vocabulary the types know. */
const REGION_PARAM = { type: /** @type {const} */ ('string'), description: 'A region name', 'x-mcp-header': 'Region' };

/**
 * Registers the tools. Server→client requests (sampling, elicitation, roots) are written once as
 * `inputRequired` results: 2026-07-28 clients fulfil them and retry (SEP-2322); on a 2025 session
 * the SDK turns them into real server→client requests, so one handler serves both generations.
 * @param {McpServer} server @param {import('./hub.js').Hub} hub
 */
function registerTools(server, hub) {
  server.registerTool('test_simple_text', { description: 'Returns a fixed text.' }, async () => ({
    content: [text('This is a simple text response for testing.')],
  }));
  server.registerTool('test_image_content', { description: 'Returns a 1x1 red PNG.' }, async () => ({
    content: [{ type: 'image', data: PNG_BASE64, mimeType: 'image/png' }],
  }));
  server.registerTool('test_audio_content', { description: 'Returns a short silent WAV.' }, async () => ({
    content: [{ type: 'audio', data: WAV_BASE64, mimeType: 'audio/wav' }],
  }));
  server.registerTool('test_embedded_resource', { description: 'Returns an embedded text resource.' }, async () => ({
    content: [{ type: 'resource', resource: { uri: 'test://embedded-resource', mimeType: 'text/plain', text: 'This is an embedded resource content.' } }],
  }));
  server.registerTool('test_multiple_content_types', { description: 'Returns text, an image and an embedded resource.' }, async () => ({
    content: [
      text('Multiple content types test:'),
      { type: 'image', data: PNG_BASE64, mimeType: 'image/png' },
      { type: 'resource', resource: { uri: 'test://mixed-content-resource', mimeType: 'application/json', text: JSON.stringify({ test: 'data', value: 123 }) } },
    ],
  }));
  server.registerTool('test_error_handling', { description: 'Always fails with a tool error (isError), not a protocol error.' }, async () => ({
    isError: true,
    content: [text('This tool intentionally returns an error for testing')],
  }));
  /** Three info logs, 50 ms apart; on 2026-07-28 the SDK sends them only if the request set a log level. */
  const logThreeSteps = async (/** @type {ServerContext} */ ctx) => {
    await ctx.mcpReq.log('info', 'Tool execution started');
    await sleep(50);
    await ctx.mcpReq.log('info', 'Tool processing data');
    await sleep(50);
    await ctx.mcpReq.log('info', 'Tool execution completed');
    return { content: [text('Logging test completed')] };
  };
  server.registerTool('test_tool_with_logging', { description: 'Sends three log messages while it runs.' }, logThreeSteps);
  // The name the conformance suite's stateless scenario calls for the same behaviour.
  server.registerTool('test_logging_tool', { description: 'Sends three log messages while it runs.' }, logThreeSteps);
  server.registerTool('test_tool_with_progress', { description: 'Reports progress 0, 50, 100 of 100 when given a progressToken.' }, async (ctx) => {
    const progressToken = ctx.mcpReq._meta?.progressToken;
    for (const progress of [0, 50, 100]) {
      if (progressToken !== undefined) await ctx.mcpReq.notify({ method: 'notifications/progress', params: { progressToken, progress, total: 100 } });
      if (progress < 100) await sleep(50);
    }
    return { content: [text('Progress test completed')] };
  });

  server.registerTool(
    'test_sampling',
    { description: 'Asks the client to sample an LLM with the given prompt.', inputSchema: stringFields({ prompt: 'The prompt to send to the LLM' }) },
    async ({ prompt }, ctx) => {
      if (!clientCapabilities(server, ctx).sampling) return { isError: true, content: [text('The client does not support sampling')] };
      const answer = samplingText(inputResponse(ctx.mcpReq.inputResponses, 'sampling'));
      if (answer === undefined) {
        return inputRequired({ inputRequests: { sampling: inputRequired.createMessage({ messages: [{ role: 'user', content: text(prompt) }], maxTokens: 100 }) } });
      }
      return { content: [text(`LLM response: ${answer}`)] };
    },
  );
  server.registerTool(
    'test_elicitation',
    { description: 'Asks the user for a username and an email.', inputSchema: stringFields({ message: 'The message to show the user' }) },
    async ({ message }, ctx) => {
      if (!clientCapabilities(server, ctx).elicitation) return { isError: true, content: [text('The client does not support elicitation')] };
      const view = inputResponse(ctx.mcpReq.inputResponses, 'user');
      if (view.kind !== 'elicit') {
        const requestedSchema = {
          type: /** @type {const} */ ('object'),
          properties: {
            username: { type: /** @type {const} */ ('string'), description: "User's response" },
            email: { type: /** @type {const} */ ('string'), description: "User's email address" },
          },
          required: ['username', 'email'],
        };
        return inputRequired({ inputRequests: { user: inputRequired.elicit({ message, requestedSchema }) } });
      }
      return { content: [text(`User response: ${describeElicitation(view)}`)] };
    },
  );
  server.registerTool('test_elicitation_sep1034_defaults', { description: 'Elicits every primitive type with a default (SEP-1034).' }, async (ctx) => {
    const view = inputResponse(ctx.mcpReq.inputResponses, 'defaults');
    if (view.kind !== 'elicit') {
      return inputRequired({
        inputRequests: {
          defaults: inputRequired.elicit({
            message: 'Please review and update the form fields with defaults',
            requestedSchema: {
              type: 'object',
              properties: {
                name: { type: 'string', description: 'User name', default: 'John Doe' },
                age: { type: 'integer', description: 'User age', default: 30 },
                score: { type: 'number', description: 'User score', default: 95.5 },
                status: { type: 'string', description: 'User status', enum: ['active', 'inactive', 'pending'], default: 'active' },
                verified: { type: 'boolean', description: 'Verification status', default: true },
              },
              required: [],
            },
          }),
        },
      });
    }
    return { content: [text(`Elicitation completed: ${describeElicitation(view)}`)] };
  });
  server.registerTool('test_elicitation_sep1330_enums', { description: 'Elicits the five enum shapes of SEP-1330.' }, async (ctx) => {
    const view = inputResponse(ctx.mcpReq.inputResponses, 'enums');
    if (view.kind !== 'elicit') {
      return inputRequired({
        inputRequests: {
          enums: inputRequired.elicit({
            message: 'Please select options from the enum fields',
            requestedSchema: {
              type: 'object',
              properties: {
                untitledSingle: { type: 'string', description: 'Untitled single-select', enum: ['option1', 'option2', 'option3'] },
                titledSingle: {
                  type: 'string',
                  description: 'Titled single-select',
                  oneOf: [
                    { const: 'value1', title: 'First Option' },
                    { const: 'value2', title: 'Second Option' },
                    { const: 'value3', title: 'Third Option' },
                  ],
                },
                legacyEnum: { type: 'string', description: 'Legacy titled enum', enum: ['opt1', 'opt2', 'opt3'], enumNames: ['Option One', 'Option Two', 'Option Three'] },
                untitledMulti: { type: 'array', description: 'Untitled multi-select', items: { type: 'string', enum: ['option1', 'option2', 'option3'] } },
                titledMulti: {
                  type: 'array',
                  description: 'Titled multi-select',
                  items: {
                    anyOf: [
                      { const: 'value1', title: 'First Choice' },
                      { const: 'value2', title: 'Second Choice' },
                      { const: 'value3', title: 'Third Choice' },
                    ],
                  },
                },
              },
              required: [],
            },
          }),
        },
      });
    }
    return { content: [text(`Elicitation completed: ${describeElicitation(view)}`)] };
  });

  // Needing sampling is declared by asking for it: the SDK refuses the request with -32021
  // (MissingRequiredClientCapabilityError, HTTP 400) when the client did not declare the capability.
  server.registerTool('test_missing_capability', { description: 'Needs a sampling answer from the client.' }, async (ctx) => {
    const answer = samplingText(inputResponse(ctx.mcpReq.inputResponses, 'capital_question'));
    if (answer === undefined) return inputRequired({ inputRequests: { capital_question: SAMPLING_FRANCE } });
    return { content: [text(`The model answered: ${answer}`)] };
  });
  server.registerTool('test_streaming_elicitation', { description: 'Reports progress, then asks the user for a name.' }, async (ctx) => {
    const view = inputResponse(ctx.mcpReq.inputResponses, 'user_name');
    if (view.kind === 'elicit') return { content: [text(`Elicitation completed: ${describeElicitation(view)}`)] };
    const progressToken = ctx.mcpReq._meta?.progressToken;
    if (progressToken !== undefined) await ctx.mcpReq.notify({ method: 'notifications/progress', params: { progressToken, progress: 1, total: 2 } });
    return inputRequired({ inputRequests: { user_name: askName('What is your name?') } });
  });
  // SEP-2243: the client mirrors `region` into an `Mcp-Param-Region` header, which the SDK checks
  // against the body (a proxy can route on it without parsing JSON).
  server.registerTool(
    'test_custom_headers',
    {
      description: 'Echoes a region that the client also sends as the Mcp-Param-Region header.',
      inputSchema: fromJsonSchema({ type: 'object', properties: { region: REGION_PARAM }, required: ['region'] }),
    },
    async (args) => ({ content: [text(`Region: ${/** @type {{ region: string }} */ (args).region}`)] }),
  );
  server.registerTool(
    'json_schema_2020_12_tool',
    { description: 'Tool with JSON Schema 2020-12 features', inputSchema: fromJsonSchema(JSON_SCHEMA_2020_12) },
    async (args) => ({ content: [text(`Received: ${JSON.stringify(args)}`)] }),
  );
  server.registerTool('test_trigger_tool_change', { description: 'Adds or removes test_dynamic_tool and announces the list change.' }, async () => {
    hub.toggleTool();
    return { content: [text(`test_dynamic_tool is now ${hub.extraTool ? 'listed' : 'gone'}`)] };
  });
  server.registerTool('test_trigger_prompt_change', { description: 'Adds or removes test_dynamic_prompt and announces the list change.' }, async () => {
    hub.togglePrompt();
    return { content: [text(`test_dynamic_prompt is now ${hub.extraPrompt ? 'listed' : 'gone'}`)] };
  });
  server.registerTool('touch_watched_resource', { description: `Changes ${WATCHED_URI} and notifies its subscribers.` }, async () => {
    await hub.touchWatched();
    return { content: [text(hub.watchedText())] };
  });
  const dynamicTool = server.registerTool('test_dynamic_tool', { description: 'Listed only while switched on by test_trigger_tool_change.' }, async () => ({
    content: [text('dynamic tool called')],
  }));
  if (!hub.extraTool) dynamicTool.disable();
  return dynamicTool;
}

/**
 * The SEP-2322 multi-round-trip scenarios: each tool asks for input with `inputRequired` and
 * completes once the retry carries the answers (and, where used, its signed requestState).
 * @param {McpServer} server
 */
function registerInputRequiredTools(server) {
  /** The verified state of this round when it belongs to `tool`, else undefined. */
  const stateOf = (/** @type {ServerContext} */ ctx, /** @type {string} */ tool) => {
    const state = ctx.mcpReq.requestState();
    return state && typeof state === 'object' && /** @type {FlowState} */ (state).tool === tool ? /** @type {FlowState} */ (state) : undefined;
  };

  server.registerTool('test_input_required_result_elicitation', { description: 'Asks for a name, then greets it.' }, async (ctx) => {
    const view = inputResponse(ctx.mcpReq.inputResponses, 'user_name');
    const name = view.kind === 'elicit' && view.action === 'accept' ? view.content?.name : undefined;
    // Missing, wrong or malformed answers are asked for again rather than failed (SEP-2322).
    if (typeof name !== 'string') return inputRequired({ inputRequests: { user_name: askName('What is your name?') } });
    return { content: [text(`Hello, ${name}!`)] };
  });
  server.registerTool('test_input_required_result_sampling', { description: 'Asks the client LLM a question.' }, async (ctx) => {
    const answer = samplingText(inputResponse(ctx.mcpReq.inputResponses, 'capital_question'));
    if (answer === undefined) return inputRequired({ inputRequests: { capital_question: SAMPLING_FRANCE } });
    return { content: [text(`The model answered: ${answer}`)] };
  });
  server.registerTool('test_input_required_result_list_roots', { description: "Asks for the client's roots." }, async (ctx) => {
    const view = inputResponse(ctx.mcpReq.inputResponses, 'client_roots');
    if (view.kind !== 'roots') return inputRequired({ inputRequests: { client_roots: inputRequired.listRoots() } });
    return { content: [text(`Client roots: ${view.roots.map((root) => root.uri).join(', ') || '(none)'}`)] };
  });
  server.registerTool('test_input_required_result_request_state', { description: 'Round-trips a signed requestState.' }, async (ctx) => {
    const view = inputResponse(ctx.mcpReq.inputResponses, 'confirm');
    if (view.kind === 'elicit' && stateOf(ctx, 'request_state')) return { content: [text(`state-ok: confirmed=${JSON.stringify(view.content?.ok ?? null)}`)] };
    return inputRequired({
      inputRequests: {
        confirm: inputRequired.elicit({
          message: 'Please confirm',
          requestedSchema: { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'] },
        }),
      },
      requestState: await stateCodec.mint({ tool: 'request_state', round: 1 }),
    });
  });
  server.registerTool('test_input_required_result_multiple_inputs', { description: 'Asks for an elicitation, a sampling and the roots at once.' }, async (ctx) => {
    const responses = ctx.mcpReq.inputResponses;
    const name = inputResponse(responses, 'user_name');
    const greeting = samplingText(inputResponse(responses, 'greeting'));
    const roots = inputResponse(responses, 'client_roots');
    if (stateOf(ctx, 'multiple_inputs') && name.kind === 'elicit' && greeting !== undefined && roots.kind === 'roots') {
      return { content: [text(`name: ${JSON.stringify(name.content?.name)}, greeting: ${greeting}, roots: ${roots.roots.length}`)] };
    }
    return inputRequired({
      inputRequests: {
        user_name: askName('What is your name?'),
        greeting: inputRequired.createMessage({ messages: [{ role: 'user', content: text('Generate a greeting') }], maxTokens: 50 }),
        client_roots: inputRequired.listRoots(),
      },
      requestState: await stateCodec.mint({ tool: 'multiple_inputs', round: 1 }),
    });
  });
  server.registerTool('test_input_required_result_multi_round', { description: 'Asks a name, then a colour, carrying state across rounds.' }, async (ctx) => {
    const state = stateOf(ctx, 'multi_round');
    const step1 = inputResponse(ctx.mcpReq.inputResponses, 'step1');
    const step2 = inputResponse(ctx.mcpReq.inputResponses, 'step2');
    if (state?.round === 2 && step2.kind === 'elicit') return { content: [text(`Completed in 3 rounds: color=${JSON.stringify(step2.content?.color)}`)] };
    if (state?.round === 1 && step1.kind === 'elicit') {
      return inputRequired({
        inputRequests: {
          step2: inputRequired.elicit({
            message: 'Step 2: What is your favorite color?',
            requestedSchema: { type: 'object', properties: { color: { type: 'string' } }, required: ['color'] },
          }),
        },
        requestState: await stateCodec.mint({ tool: 'multi_round', round: 2 }),
      });
    }
    return inputRequired({ inputRequests: { step1: askName('Step 1: What is your name?') }, requestState: await stateCodec.mint({ tool: 'multi_round', round: 1 }) });
  });
  server.registerTool('test_input_required_result_tampered_state', { description: 'Signs its requestState; a tampered echo is refused.' }, async (ctx) => {
    if (stateOf(ctx, 'tampered_state')) return { content: [text('state verified')] };
    return inputRequired({ inputRequests: { user_name: askName('What is your name?') }, requestState: await stateCodec.mint({ tool: 'tampered_state', round: 1 }) });
  });
  server.registerTool('test_input_required_result_capabilities', { description: 'Asks only for the inputs the client declared it can give.' }, async (ctx) => {
    const caps = clientCapabilities(server, ctx);
    /** @type {InputRequests} */
    const wanted = {};
    if (caps.elicitation) wanted.user_name = askName('What is your name?');
    if (caps.sampling) wanted.capital_question = SAMPLING_FRANCE;
    if (caps.roots) wanted.client_roots = inputRequired.listRoots();
    const missing = Object.keys(wanted).filter((key) => inputResponse(ctx.mcpReq.inputResponses, key).kind === 'missing');
    if (missing.length === 0) return { content: [text(`Received ${Object.keys(wanted).length} input(s): ${Object.keys(wanted).join(', ') || 'none needed'}`)] };
    return inputRequired({ inputRequests: Object.fromEntries(missing.map((key) => [key, wanted[key]])) });
  });
}

/** @param {McpServer} server @param {import('./hub.js').Hub} hub */
function registerResources(server, hub) {
  server.registerResource(
    'static-text',
    'test://static-text',
    { description: 'A static text resource.', mimeType: 'text/plain', cacheHint: { ttlMs: 60_000, cacheScope: 'public' } },
    async (uri) => ({ contents: [{ uri: uri.href, mimeType: 'text/plain', text: 'This is the content of the static text resource.' }] }),
  );
  server.registerResource(
    'static-binary',
    'test://static-binary',
    { description: 'A static binary resource (a PNG).', mimeType: 'image/png', cacheHint: { ttlMs: 60_000, cacheScope: 'public' } },
    async (uri) => ({ contents: [{ uri: uri.href, mimeType: 'image/png', blob: PNG_BASE64 }] }),
  );
  server.registerResource(
    'watched-resource',
    WATCHED_URI,
    { description: 'Changes on touch_watched_resource; subscribe to hear about it.', mimeType: 'text/plain' },
    async (uri) => ({ contents: [{ uri: uri.href, mimeType: 'text/plain', text: hub.watchedText() }] }),
  );
  server.registerResource(
    'template-data',
    new ResourceTemplate('test://template/{id}/data', { list: undefined }),
    { description: 'Data for any id.', mimeType: 'application/json', cacheHint: { ttlMs: 5_000, cacheScope: 'private' } },
    async (uri, { id }) => ({
      contents: [{ uri: uri.href, mimeType: 'application/json', text: JSON.stringify({ id: String(id), templateTest: true, data: `Data for ID: ${id}` }) }],
    }),
  );
}

/** @param {McpServer} server @param {import('./hub.js').Hub} hub */
function registerPrompts(server, hub) {
  server.registerPrompt('test_simple_prompt', { description: 'A prompt without arguments.' }, async () => ({
    messages: [{ role: 'user', content: text('This is a simple prompt for testing.') }],
  }));
  server.registerPrompt(
    'test_prompt_with_arguments',
    {
      description: 'A prompt with two arguments, both completable.',
      argsSchema: stringFields({ arg1: 'First test argument', arg2: 'Second test argument' }),
    },
    async ({ arg1, arg2 }) => ({ messages: [{ role: 'user', content: text(`Prompt with arguments: arg1='${arg1}', arg2='${arg2}'`) }] }),
  );
  server.registerPrompt(
    'test_prompt_with_embedded_resource',
    { description: 'A prompt embedding a resource.', argsSchema: stringFields({ resourceUri: 'URI of the resource to embed' }) },
    async ({ resourceUri }) => ({
      messages: [
        { role: 'user', content: { type: 'resource', resource: { uri: resourceUri, mimeType: 'text/plain', text: 'Embedded resource content for testing.' } } },
        { role: 'user', content: text('Please process the embedded resource above.') },
      ],
    }),
  );
  server.registerPrompt('test_prompt_with_image', { description: 'A prompt with an image.' }, async () => ({
    messages: [
      { role: 'user', content: { type: 'image', data: PNG_BASE64, mimeType: 'image/png' } },
      { role: 'user', content: text('Please analyze the image above.') },
    ],
  }));
  server.registerPrompt('test_input_required_result_prompt', { description: 'Asks the user for context before it is built.' }, async (ctx) => {
    const view = inputResponse(ctx.mcpReq.inputResponses, 'user_context');
    if (view.kind !== 'elicit') {
      return inputRequired({
        inputRequests: {
          user_context: inputRequired.elicit({
            message: 'What context should the prompt use?',
            requestedSchema: { type: 'object', properties: { context: { type: 'string' } }, required: ['context'] },
          }),
        },
      });
    }
    return { messages: [{ role: 'user', content: text(`Use this context: ${JSON.stringify(view.content?.context ?? null)}`) }] };
  });
  const dynamicPrompt = server.registerPrompt('test_dynamic_prompt', { description: 'Listed only while switched on by test_trigger_prompt_change.' }, async () => ({
    messages: [{ role: 'user', content: text('dynamic prompt') }],
  }));
  if (!hub.extraPrompt) dynamicPrompt.disable();
  return dynamicPrompt;
}

/**
 * One server instance: per request for 2026-07-28, per session for 2025. A 2025 session also gets
 * resources/subscribe and unsubscribe (gone in 2026-07-28, where subscriptions/listen replaces them).
 * @param {import('./hub.js').Hub} hub
 * @param {'legacy' | 'modern'} era
 */
export function createServer(hub, era) {
  const server = new McpServer(SERVER_INFO, {
    capabilities: {
      tools: { listChanged: true },
      prompts: { listChanged: true },
      resources: { subscribe: true, listChanged: true },
      logging: {},
      completions: {},
    },
    cacheHints: CACHE_HINTS,
    requestState: { verify: stateCodec.verify },
    instructions: 'A sample that exercises the MCP protocol broadly; its names follow the MCP conformance suite.',
  });
  const dynamicTool = registerTools(server, hub);
  registerInputRequiredTools(server);
  registerResources(server, hub);
  const dynamicPrompt = registerPrompts(server, hub);
  // Completions come from tables rather than per-schema callbacks, since the schemas are plain JSON Schema.
  server.server.setRequestHandler('completion/complete', async ({ params }) => {
    const table = params.ref.type === 'ref/prompt' ? PROMPT_COMPLETIONS[params.ref.name] : TEMPLATE_COMPLETIONS[params.ref.uri];
    const values = (table?.[params.argument.name] ?? []).filter((value) => value.startsWith(params.argument.value));
    return { completion: { values, total: values.length, hasMore: false } };
  });
  if (era === 'legacy') {
    const session = { uris: new Set(), dynamicTool, dynamicPrompt };
    server.server.setRequestHandler('resources/subscribe', async ({ params }) => {
      if (params.uri !== WATCHED_URI && !params.uri.startsWith('test://')) throw new ProtocolError(ProtocolErrorCode.InvalidParams, `Unknown resource ${params.uri}`);
      session.uris.add(params.uri);
      return {};
    });
    server.server.setRequestHandler('resources/unsubscribe', async ({ params }) => {
      session.uris.delete(params.uri);
      return {};
    });
    hub.sessions.set(server, session);
    const previous = server.server.onclose;
    server.server.onclose = () => {
      hub.sessions.delete(server);
      previous?.();
    };
  }
  return server;
}
