/** The page's one confirmation dialog, its notice line, and the controls that use them. */
import { ApiError } from './api.ts';
import { h } from './dom.ts';

export function confirmAction(question: string): Promise<boolean> {
  const dialog = document.getElementById('confirm') as HTMLDialogElement;
  document.getElementById('confirm-text')!.textContent = question;
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      ok ? dialog.close('ok') : dialog.close('cancel');
      okButton.removeEventListener('click', onOk);
      cancel.removeEventListener('click', onCancel);
      dialog.removeEventListener('cancel', onCancel);
      resolve(ok);
    };
    const okButton = document.getElementById('confirm-ok')!;
    const cancel = document.getElementById('confirm-cancel')!;
    const onOk = () => done(true);
    const onCancel = () => done(false);
    okButton.addEventListener('click', onOk);
    cancel.addEventListener('click', onCancel);
    dialog.addEventListener('cancel', onCancel);
    dialog.showModal();
  });
}

export function notify(message: string, kind: 'ok' | 'error'): void {
  const notice = document.getElementById('notice')!;
  notice.textContent = message;
  notice.className = kind;
}

/** A button that says why it is disabled (the reason is its accessible description too). */
export function controlButton(id: string, label: string, refusal: string | undefined, onClick: () => void, ariaLabel?: string): HTMLElement {
  const reasonId = `${id}-reason`;
  return h(
    'span',
    { class: 'control' },
    h('button', { type: 'button', id, disabled: refusal !== undefined, 'aria-describedby': refusal ? reasonId : undefined, title: refusal, onclick: onClick, ...(ariaLabel ? { 'aria-label': ariaLabel } : {}) }, label),
    refusal ? h('span', { class: 'reason', id: reasonId }, refusal) : null,
  );
}

/** Asks, sends, and shows the API's answer (a refusal's reason is what the operator needs), then refreshes the view. */
export async function act(question: string, label: string, send: () => Promise<unknown>, refresh: () => Promise<void>): Promise<boolean> {
  if (!(await confirmAction(question))) return false;
  let done = false;
  try {
    await send();
    notify(`${label}: done`, 'ok');
    done = true;
  } catch (err) {
    notify(`${label} refused: ${err instanceof ApiError ? err.message : String(err)}`, 'error');
  }
  await refresh().catch(() => undefined);
  return done;
}
