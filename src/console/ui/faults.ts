// The Faults page: the runtime faults in force with their lease counting down; a form that adds one
// (PUT /faults/:id, checked by the API's own schema: its 400 names each problem's field, shown at that
// field); remove one. A viewer sees the list and no form.
import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { ApiError, call } from './api.ts';
import type { FaultView, LiveFrame } from './live.ts';

interface Form {
  id: string;
  source: string;
  destination: string;
  at: string;
  percent: string;
  action: 'abort' | 'delay';
  status: string;
  delay: string;
  ttl: string;
}

const EMPTY: Form = { id: '', source: '', destination: '', at: 'request', percent: '100', action: 'abort', status: '503', delay: '200ms', ttl: '5m' };

/** Which input a problem's field path belongs to. */
function inputOf(field: string): keyof Form | undefined {
  if (field === 'id') return 'id';
  if (field.startsWith('match.source')) return 'source';
  if (field.startsWith('match.destination')) return 'destination';
  if (field === 'at') return 'at';
  if (field === 'percent') return 'percent';
  if (field.startsWith('abort')) return 'status';
  if (field.startsWith('delay')) return 'delay';
  if (field === 'ttl' || field === 'expiresAt') return 'ttl';
  return undefined;
}

function body(form: Form): Record<string, unknown> {
  const match: Record<string, string> = {};
  if (form.source) match.source = form.source;
  if (form.destination) match.destination = form.destination;
  const percent = Number(form.percent);
  return {
    match,
    at: form.at,
    // A number when it reads as one; else as typed, for the schema to name.
    percent: form.percent.trim() !== '' && Number.isFinite(percent) ? percent : form.percent,
    ttl: form.ttl,
    ...(form.action === 'abort' ? { abort: { status: Number.isInteger(Number(form.status)) ? Number(form.status) : form.status } } : { delay: { fixed: form.delay } }),
  };
}

function remaining(fault: FaultView, now: number): string {
  if (!fault.expiresAt) return 'no lease';
  const ms = Math.max(0, Date.parse(fault.expiresAt) - now);
  const s = Math.ceil(ms / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

function target(fault: FaultView): string {
  const side = (v: string | string[] | undefined) => (v === undefined ? 'any' : Array.isArray(v) ? v.join('|') : v);
  return `${side(fault.spec.match?.source)} → ${side(fault.spec.match?.destination)}`;
}

export function FaultsPage({ frame, admin }: { frame: LiveFrame | undefined; admin: boolean }) {
  const [form, setForm] = useState<Form>(EMPTY);
  const [errors, setErrors] = useState<Partial<Record<keyof Form | 'form', string>>>({});
  const [notice, setNotice] = useState<string>();
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 250);
    return () => clearInterval(timer);
  }, []);
  const services = frame?.services.map((s) => s.name) ?? [];
  const set = (key: keyof Form) => (e: Event) => setForm({ ...form, [key]: (e.target as HTMLInputElement).value });

  const submit = async (event: Event) => {
    event.preventDefault();
    setErrors({});
    setNotice(undefined);
    if (!form.id) return setErrors({ id: 'a name for the fault: lowercase letters, digits and "-"' });
    try {
      await call('PUT', `/faults/${encodeURIComponent(form.id)}`, body(form));
      setNotice(`Fault ${form.id} added.`);
      setForm({ ...EMPTY });
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      const found: Partial<Record<keyof Form | 'form', string>> = {};
      for (const p of error.body.problems ?? []) {
        const key = inputOf(p.field) ?? 'form';
        found[key] = found[key] ? `${found[key]}; ${p.message}` : key === 'form' ? `${p.field}: ${p.message}` : p.message;
      }
      if (Object.keys(found).length === 0) found.form = error.message;
      setErrors(found);
    }
  };
  const remove = async (id: string) => {
    try {
      await call('DELETE', `/faults/${encodeURIComponent(id)}`);
      setNotice(`Fault ${id} removed.`);
    } catch (error) {
      setNotice(`Removing ${id} failed: ${(error as Error).message}`);
    }
  };

  const field = (key: keyof Form, label: string, input: unknown, hint?: string) => html`<div class=${`field${errors[key] ? ' invalid' : ''}`}>
    <label for=${`f-${key}`}>${label}</label>
    ${input}
    ${hint && html`<small id=${`f-${key}-hint`}>${hint}</small>`}
    ${errors[key] && html`<p class="error" id=${`f-${key}-error`} role="alert" data-testid=${`error-${key}`}>${errors[key]}</p>`}
  </div>`;
  const described = (key: keyof Form) => (errors[key] ? `f-${key}-error` : undefined);

  return html`<section aria-labelledby="faults-title">
    <h1 id="faults-title">Runtime faults</h1>
    ${notice && html`<p class="notice" role="status" data-testid="notice">${notice}</p>`}
    <div class="table-wrap">
      <table class="faults" data-testid="faults-table">
        <thead><tr><th scope="col">id</th><th scope="col">action</th><th scope="col">calls</th><th scope="col">at</th><th scope="col">%</th><th scope="col">applied</th><th scope="col">on sidecars</th><th scope="col">lease left</th>${admin && html`<th scope="col"><span class="sr-only">remove</span></th>`}</tr></thead>
        <tbody>
          ${(frame?.faults ?? []).length === 0 && html`<tr><td colspan="9" class="empty" data-testid="no-faults">No runtime fault in force.</td></tr>`}
          ${(frame?.faults ?? []).map((f) => html`<tr data-testid=${`fault-${f.id}`}>
            <td>${f.id}</td><td>${f.action}</td><td>${target(f)}</td><td>${f.spec.at ?? 'request'}</td><td>${f.spec.percent ?? 100}</td><td>${f.applied}</td><td data-testid=${`held-${f.id}`}>${f.heldBy}/${f.sidecars}</td>
            <td class="lease" data-testid=${`lease-${f.id}`}>${remaining(f, now)}</td>
            ${admin && html`<td><button type="button" class="quiet" onClick=${() => remove(f.id)} data-testid=${`remove-${f.id}`} aria-label=${`Remove fault ${f.id}`}>Remove</button></td>`}
          </tr>`)}
        </tbody>
      </table>
    </div>
    ${admin
      ? html`<h2>Add a fault</h2>
      <form class="fault-form" onSubmit=${submit} novalidate data-testid="fault-form">
        ${errors.form && html`<p class="error" role="alert" data-testid="error-form">${errors.form}</p>`}
        ${field('id', 'Id', html`<input id="f-id" value=${form.id} onInput=${set('id')} aria-invalid=${Boolean(errors.id)} aria-describedby=${described('id')} />`)}
        ${field('source', 'Calls from', html`<select id="f-source" value=${form.source} onChange=${set('source')} aria-describedby=${described('source')}><option value="">any service</option>${services.map((s) => html`<option value=${s}>${s}</option>`)}</select>`)}
        ${field('destination', 'Calls to', html`<select id="f-destination" value=${form.destination} onChange=${set('destination')} aria-describedby=${described('destination')}><option value="">any service</option>${services.map((s) => html`<option value=${s}>${s}</option>`)}</select>`)}
        ${field('at', 'Injected at', html`<select id="f-at" value=${form.at} onChange=${set('at')}><option value="request">request (before retries)</option><option value="attempt">attempt (each try)</option><option value="inbound">inbound (at the destination)</option></select>`)}
        ${field('percent', 'Percent of matching calls', html`<input id="f-percent" inputmode="decimal" value=${form.percent} onInput=${set('percent')} aria-invalid=${Boolean(errors.percent)} aria-describedby=${described('percent')} />`)}
        ${field('action', 'Action', html`<select id="f-action" value=${form.action} onChange=${set('action')}><option value="abort">abort (answer with a status)</option><option value="delay">delay (fixed)</option></select>`)}
        ${form.action === 'abort'
          ? field('status', 'Status', html`<input id="f-status" inputmode="numeric" value=${form.status} onInput=${set('status')} aria-invalid=${Boolean(errors.status)} aria-describedby=${described('status')} />`, '200–599')
          : field('delay', 'Delay', html`<input id="f-delay" value=${form.delay} onInput=${set('delay')} aria-invalid=${Boolean(errors.delay)} aria-describedby=${described('delay')} />`, 'a duration, e.g. 250ms')}
        ${field('ttl', 'Lease', html`<input id="f-ttl" value=${form.ttl} onInput=${set('ttl')} aria-invalid=${Boolean(errors.ttl)} aria-describedby=${described('ttl')} />`, 'removes itself after, e.g. 5m')}
        <div class="actions"><button type="submit" data-testid="fault-submit">Add fault</button></div>
      </form>`
      : html`<p class="hint" data-testid="viewer-note">Signed in as a viewer: faults can be seen, not added or removed.</p>`}
  </section>`;
}
