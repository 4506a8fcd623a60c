import type { AlertRuleId } from '../core/config.ts';

/** The service name system-wide alerts (Temporal, MongoDB) are grouped under. */
export const SYSTEM_SERVICE = 'mcpship';

/** A rule's finding at one evaluation: the condition holds now for this service (and version). */
export interface Condition {
  rule: AlertRuleId;
  service: string;
  version?: string;
  summary: string;
  details?: Record<string, unknown>;
}

export type AlertState = 'pending' | 'firing' | 'resolved';

/** One alert: a rule for one service (and version), de-duplicated across evaluations. In MongoDB `alerts`. */
export interface AlertDoc {
  /** `<rule>/<service>[/<version>]`: one document per condition, whatever the number of evaluations. */
  alertId: string;
  rule: AlertRuleId;
  service: string;
  version?: string;
  state: AlertState;
  summary: string;
  details?: Record<string, unknown>;
  /** Bumped each time the condition comes back after a resolve: a notification is per episode and state. */
  episode: number;
  /** When the condition was first seen holding in this episode. */
  activeSince: Date;
  firingSince?: Date;
  resolvedAt?: Date;
  /** The last state a notification was handed to Temporal for (or skipped by a silence). */
  notified?: 'firing' | 'resolved';
  /** The silence that kept the last notification back. */
  silencedBy?: string;
  updatedAt: Date;
}

/** A silence: matching alerts still change state, but send no notification until it expires. In MongoDB `alertSilences`. */
export interface SilenceDoc {
  silenceId: string;
  /** Absent: every service. */
  service?: string;
  /** Absent: every rule. */
  rule?: AlertRuleId;
  comment: string;
  createdAt: Date;
  expiresAt: Date;
}

/** What POST /api/alerts/silences accepts: the API's schema and the dashboard's form share them. */
export const SILENCE_LIMITS = { maxDurationSec: 30 * 24 * 3600, maxCommentChars: 1000 } as const;

/** An alert as GET /api/alerts shows it. */
export interface AlertView extends AlertDoc {
  /**
   * The silence in force that matches it now (a pending or firing alert only). Unlike silencedBy,
   * which names the silence that kept its last notification back, this holds for a silence made
   * after the alert was already told.
   */
  silence?: string;
}

export interface WebhookTarget {
  url: string;
  format: 'json' | 'slack';
}

/** What one notification says: a service's alerts that changed state in one evaluation. */
export interface AlertNotification {
  service: string;
  /** firing when any alert in it fires, else resolved. */
  status: 'firing' | 'resolved';
  alerts: { alertId: string; rule: AlertRuleId; version?: string; state: 'firing' | 'resolved'; summary: string; since: string; resolvedAt?: string; details?: Record<string, unknown> }[];
  /** Where the dashboard shows them. */
  dashboardUrl?: string;
}

export interface AlertNotifyInput {
  webhooks: WebhookTarget[];
  notification: AlertNotification;
}
