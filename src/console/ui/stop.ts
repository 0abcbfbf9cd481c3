// The emergency stop (POST /halt): every runtime fault removed mesh-wide and running game days halted.
// One click opens the confirmation (with a reason); a viewer sees it disabled.
import { html } from 'htm/preact';
import { useRef, useState } from 'preact/hooks';
import { call } from './api.ts';

interface HaltReport {
  deleted: string[];
  by: string;
  reason: string;
}

export function StopButton({ allowed }: { allowed: boolean }) {
  const dialog = useRef<HTMLDialogElement>(null);
  const [reason, setReason] = useState('');
  const [result, setResult] = useState<string>();
  const open = () => {
    setResult(undefined);
    dialog.current?.showModal();
  };
  const confirm = async (event: Event) => {
    event.preventDefault();
    try {
      const report = await call<HaltReport>('POST', '/halt', { by: 'console', reason: reason || 'emergency stop from the console' });
      setResult(`Stopped: ${report.deleted.length} fault${report.deleted.length === 1 ? '' : 's'} removed.`);
      dialog.current?.close();
    } catch (error) {
      setResult(`The stop failed: ${(error as Error).message}`);
    }
  };
  return html`<span class="stop">
    <button type="button" class="danger" onClick=${open} disabled=${!allowed} title=${allowed ? 'Remove every runtime fault and halt running game days' : 'A viewer cannot stop'} data-testid="stop">Emergency stop</button>
    ${result && html`<span class="stop-result" role="status" data-testid="stop-result">${result}</span>`}
    <dialog ref=${dialog} aria-labelledby="stop-title" data-testid="stop-dialog">
      <form method="dialog" onSubmit=${confirm}>
        <h2 id="stop-title">Emergency stop</h2>
        <p>Every runtime fault is removed from every sidecar, and running game days halt.</p>
        <label for="stop-reason">Reason</label>
        <input id="stop-reason" value=${reason} onInput=${(e: Event) => setReason((e.target as HTMLInputElement).value)} placeholder="why (journaled)" />
        <div class="actions">
          <button type="button" class="quiet" onClick=${() => dialog.current?.close()}>Cancel</button>
          <button type="submit" class="danger" data-testid="stop-confirm">Stop everything</button>
        </div>
      </form>
    </dialog>
  </span>`;
}
