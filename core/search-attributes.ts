import { defineSearchAttributeKey } from '@temporalio/common';

/** Keyword search attributes mcpship sets on its runs, so Temporal Web UI can filter them. */
export const McpService = defineSearchAttributeKey('McpService', 'KEYWORD');
export const McpVersion = defineSearchAttributeKey('McpVersion', 'KEYWORD');
export const McpStage = defineSearchAttributeKey('McpStage', 'KEYWORD');

export const SEARCH_ATTRIBUTE_NAMES = [McpService.name, McpVersion.name, McpStage.name] as const;
