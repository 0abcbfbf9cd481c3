// A sidecar whose trace collector is down still closes cleanly, its batched spans lost.
import { expect } from 'chai';
import { MeshTracer } from '../../src/telemetry/tracing.ts';
import { freeAddress } from '../helpers/net.ts';

describe('tracing without its collector', () => {
  it('closes without an error when the OTLP endpoint refuses the export', async () => {
    const tracer = new MeshTracer('svc', 'svc', { otlpEndpoint: `http://${await freeAddress()}/v1/traces`, sampleRatio: 1 });
    const forward: Record<string, string> = {};
    const hop = tracer.startHop(true, {}, forward, () => ({ name: 'GET x', attributes: {} }));
    hop.span!.end();
    const started = Date.now();
    await tracer.close();
    expect(Date.now() - started).to.be.below(3_000);
    expect(forward.traceparent ?? hop.traceId).to.be.a('string');
  });
});
