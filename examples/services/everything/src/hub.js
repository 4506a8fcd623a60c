/** @typedef {import('@modelcontextprotocol/server').McpServer} McpServer */
/** @typedef {import('@modelcontextprotocol/server').ServerNotifier} ServerNotifier */
/**
 * A live 2025 session: the resource URIs it subscribed to, and its handles on the tool and prompt
 * the triggers switch on and off (enabling or disabling one sends the session its list_changed).
 * @typedef {{ uris: Set<string>, dynamicTool: import('@modelcontextprotocol/server').RegisteredTool, dynamicPrompt: import('@modelcontextprotocol/server').RegisteredPrompt }} Session
 */

export const WATCHED_URI = 'test://watched-resource';

/**
 * What every server instance of one process shares: per-request 2026-07-28 instances and per-session
 * 2025 instances come and go, but the list changes, the watched resource and who subscribed to it
 * must be seen by all of them. Change events go to both generations: open `subscriptions/listen`
 * streams (2026-07-28, through the handler's notifier) and live 2025 sessions (as notifications).
 */
export class Hub {
  /** Turned on by test_trigger_tool_change / test_trigger_prompt_change: the lists really change. */
  extraTool = false;
  extraPrompt = false;
  /** Bumped by touch_watched_resource. */
  watchedRevision = 0;
  /** @type {ServerNotifier | undefined} set once the 2026-07-28 handler exists */
  notifier;
  /** @type {Map<McpServer, Session>} */
  sessions = new Map();

  watchedText() {
    return `Watched resource content (revision ${this.watchedRevision})`;
  }

  toggleTool() {
    this.extraTool = !this.extraTool;
    this.notifier?.toolsChanged();
    for (const { dynamicTool } of this.sessions.values()) this.extraTool ? dynamicTool.enable() : dynamicTool.disable();
  }

  togglePrompt() {
    this.extraPrompt = !this.extraPrompt;
    this.notifier?.promptsChanged();
    for (const { dynamicPrompt } of this.sessions.values()) this.extraPrompt ? dynamicPrompt.enable() : dynamicPrompt.disable();
  }

  async touchWatched() {
    this.watchedRevision++;
    this.notifier?.resourceUpdated(WATCHED_URI);
    await Promise.allSettled(
      [...this.sessions].filter(([, session]) => session.uris.has(WATCHED_URI)).map(([server]) => server.server.sendResourceUpdated({ uri: WATCHED_URI })),
    );
  }
}
