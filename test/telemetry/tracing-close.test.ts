// Tracers close cleanly: one whose trace collector is down (its batched spans lost), and, of tracers
// sharing the process's export worker (sidecars of one `faultline up`), one closing while another
// goes on exporting. The worker starts with the first spans posted, not with the tracer.
import { expect } from 'chai';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { MeshTracer } from '../../src/telemetry/tracing.ts';
import { freeAddress, waitFor } from '../helpers/net.ts';

/** Ends one sampled root hop on the tracer. */
function oneSpan(tracer: MeshTracer): void {
  const hop = tracer.startHop(true, {}, {});
  hop.span!.describe('GET x', {});
  hop.span!.end(200, '');
}

/** Counts the worker threads this process creates (Node publishes each on this channel as it is constructed). */
function countCreatedWorkers(): { readonly count: () => number; stop(): void } {
  let created = 0;
  const onCreated = () => created++;
  subscribe('worker_threads', onCreated);
  return { count: () => created, stop: () => unsubscribe('worker_threads', onCreated) };
}

/** Worker threads this process runs now (Node's diagnostic report lists them). */
const running = () => (process.report.getReport() as { workers: unknown[] }).workers.length;

describe('tracing, closing', () => {
  it('starts the export worker with the first spans it posts, and stops it with the close', async () => {
    const before = running();
    const created = countCreatedWorkers();
    const tracer = new MeshTracer('svc', 'svc', { otlpEndpoint: `http://${await freeAddress()}/v1/traces`, sampleRatio: 1, exportDelayMs: 20 });
    try {
      const unsampled = tracer.startHop(true, { traceparent: `00-${'1'.repeat(32)}-${'2'.repeat(16)}-00` }, {});
      expect(unsampled.span).to.equal(undefined);
      expect(created.count()).to.equal(0);
      oneSpan(tracer);
      await waitFor(() => created.count() === 1, 5_000, 'the export worker to start');
      await waitFor(() => running() === before + 1, 5_000, 'the export worker to run');
    } finally {
      await tracer.close();
      created.stop();
    }
    expect(running()).to.equal(before);
  });

  it('closes a tracer that never posted a span without starting the worker', async () => {
    const created = countCreatedWorkers();
    try {
      const tracer = new MeshTracer('svc', 'svc', { otlpEndpoint: `http://${await freeAddress()}/v1/traces`, sampleRatio: 1, exportDelayMs: 20 });
      await tracer.close();
      expect(created.count()).to.equal(0);
    } finally {
      created.stop();
    }
  });

  it('closes without an error when the OTLP endpoint refuses the export', async () => {
    const tracer = new MeshTracer('svc', 'svc', { otlpEndpoint: `http://${await freeAddress()}/v1/traces`, sampleRatio: 1, exportDelayMs: 1_000 });
    const forward: Record<string, string> = {};
    const hop = tracer.startHop(true, {}, forward);
    hop.span!.end(200, '');
    const started = Date.now();
    await tracer.close();
    expect(Date.now() - started).to.be.below(3_000);
    expect(hop.traceId).to.match(/^[0-9a-f]{32}$/);
  });

  it('flushes a closing tracer and keeps the others of the process exporting', async () => {
    const services: string[] = [];
    const receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c));
      req.on('end', () => {
        for (const match of body.matchAll(/"key":"service\.name","value":\{"stringValue":"([^"]+)"/g)) {
          services.push(...Array.from({ length: (body.match(/"spanId"/g) ?? []).length }, () => match[1]!));
        }
        res.end('{}');
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const otlpEndpoint = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/v1/traces`;
    const first = new MeshTracer('first', 'first', { otlpEndpoint, sampleRatio: 1, exportDelayMs: 1_000 });
    const second = new MeshTracer('second', 'second', { otlpEndpoint, sampleRatio: 1, exportDelayMs: 1_000 });
    try {
      oneSpan(first);
      oneSpan(second);
      // Closing flushes: the first tracer's span is sent before close resolves.
      await first.close();
      expect(services).to.include('first');
      oneSpan(second);
      await waitFor(() => services.filter((s) => s === 'second').length === 2, 5_000, "the second tracer's two spans");
      expect(services.filter((s) => s === 'first')).to.have.length(1);
    } finally {
      await first.close();
      await second.close();
      await new Promise<void>((resolve) => receiver.close(() => resolve()));
    }
  });
});
