/** Stable workflow ids, so a run is found by what it is about (also in Temporal Web UI). */
export const serviceWorkflowId = (service: string) => `service/${service}`;
export const deploymentWorkflowId = (service: string, version: string) => `deploy/${service}/${version}`;

/** A link to a workflow in Temporal Web UI, when the UI's address is known. */
export function temporalUiLink(uiUrl: string | undefined, namespace: string, workflowId: string): string | undefined {
  return uiUrl ? `${uiUrl}/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(workflowId)}` : undefined;
}
export const replayWorkflowId = (service: string, candidate: string) => `replay/${service}/${candidate}`;
