// The one file the worker bundles: every workflow is exported from here.
export { selfCheckWorkflow } from './self-check.ts';
export { serviceWorkflow } from './service-workflow.ts';
export { deploymentWorkflow } from './deployment-workflow.ts';
export { replayWorkflow } from './replay-workflow.ts';
export { alertNotifyWorkflow } from './alert-notify-workflow.ts';
