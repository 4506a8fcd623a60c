/** The page's one confirmation dialog and its notice line. */
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
