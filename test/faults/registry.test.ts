// The action and toxic registries walked entry by entry, so that none can be half-added: a fault with
// each parses and survives the runner's round trip, the JSON Schema has its field, its runtime builds,
// it is named and targeted, the names it refers to are checked, and docs/faults.md describes it.
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { checkFault } from '../../src/config/references.ts';
import type { Experiment, StepConfig } from '../../src/experiments/spec.ts';
import { faultBody } from '../../src/experiments/steps.ts';
import { ActiveFault } from '../../src/faults/active.ts';
import type { ActionDefinition } from '../../src/faults/actions/action.ts';
import { ACTION_DEFINITIONS, ACTIONS, actionName, actionOf, faultTargets } from '../../src/faults/actions/index.ts';
import { FaultSpec, type FaultConfig } from '../../src/faults/schema.ts';
import { createStage, toxicOf, TOXICS } from '../../src/faults/tcp/toxics/index.ts';
import { ToxicStage } from '../../src/faults/tcp/toxics/stage.ts';

const docs = readFileSync(new URL('../../docs/faults.md', import.meta.url), 'utf8');
type Properties = { properties: Record<string, Properties> };
const jsonSchema = z.toJSONSchema(FaultSpec, { io: 'input' }) as unknown as Properties;
const none = new Set<string>();

/** The fault as the runner sends it for a method step, parsed again as a sidecar would. */
function roundTrip(fault: FaultConfig): FaultConfig {
  const experiment = { name: 'registry', load: {} } as Experiment;
  return FaultSpec.parse(faultBody(experiment, { fault } as StepConfig, fault.seed));
}

describe('the fault action registry', () => {
  it('lists every action once, in the order of ACTIONS', () => {
    expect(new Set(ACTIONS).size).to.equal(ACTION_DEFINITIONS.length);
    expect(ACTIONS).to.deep.equal(ACTION_DEFINITIONS.map((d) => d.name));
  });

  it('a fault without an action names each of them; with two, it is refused', () => {
    const missing = FaultSpec.safeParse({ id: 'f' });
    expect(missing.error?.issues[0]?.message).to.equal(`missing: one action, of ${ACTIONS.join(', ')}`);
    expect(FaultSpec.safeParse({ id: 'f', hang: {}, abort: { status: 503 } }).error?.issues[0]?.message).to.equal('one action, not abort and hang');
  });

  for (const definition of ACTION_DEFINITIONS as readonly ActionDefinition[]) {
    describe(definition.name, () => {
      const fault = FaultSpec.parse({ id: 'f', [definition.name]: definition.example });
      const settings = (fault as Record<string, unknown>)[definition.name];

      it('parses from its example, and the JSON Schema has its field', () => {
        expect(settings).to.not.equal(undefined);
        expect(jsonSchema.properties).to.have.property(definition.name);
      });

      it('is named by actionName, here and on the sidecar', () => {
        expect(actionName(fault)).to.equal(definition.name);
        expect(new ActiveFault(fault, 'config', undefined).actionName).to.equal(definition.name);
      });

      it(definition.layer === 'http' ? 'builds its runtime, which plans an injection' : 'has no HTTP runtime (an L4 action)', () => {
        const action = actionOf(fault);
        if (definition.layer === 'l4') return void expect(action).to.equal(undefined);
        expect(action?.name).to.equal(definition.name);
        expect(action?.plan(() => 0.5)).to.be.an('object');
      });

      it('targets its services: its own, or the match\'s destinations', () => {
        if (definition.targets) {
          expect(faultTargets(fault)).to.deep.equal([...new Set(definition.targets(settings, fault.match))]);
          return;
        }
        const aimed = FaultSpec.parse({ id: 'f', match: { destination: ['payments', 'stock'] }, [definition.name]: definition.example });
        expect(faultTargets(aimed)).to.deep.equal(['payments', 'stock']);
        expect(faultTargets(fault)).to.deep.equal([]);
      });

      it('survives the runner\'s round trip (its durations sent back as text)', () => {
        expect(roundTrip(fault)).to.deep.equal({ ...fault, description: 'experiment:registry' });
      });

      it('has the names it refers to checked against the config', () => {
        const problems = checkFault(fault, none, none);
        const references = definition.references?.(settings) ?? [];
        expect(problems.map((p) => p.path)).to.deep.equal(references.flatMap((r) => r.names.map(() => [...r.path])));
      });

      it('is described in docs/faults.md', () => {
        expect(docs).to.include(`\`${definition.name}: {`);
      });
    });
  }

  it('a partition targets both its sides, and names no services in match', () => {
    const fault = FaultSpec.parse({ id: 'p', partition: { from: ['checkout'], to: ['payments', 'checkout'] } });
    expect(faultTargets(fault)).to.deep.equal(['checkout', 'payments']);
    const aimed = FaultSpec.safeParse({ id: 'p', match: { destination: 'payments' }, partition: { from: ['checkout'], to: ['payments'] } });
    expect(aimed.error?.issues.map((i) => [i.path, i.message])).to.deep.equal([[['match'], 'a partition names its services in from and to, not in match']]);
  });
});

describe('the tcp toxic registry', () => {
  const link = { active: () => true, applied: () => undefined, close: () => undefined, reset: () => undefined };

  it('a tcp fault without a toxic names each of them', () => {
    const missing = FaultSpec.safeParse({ id: 't', tcp: { listener: 'db' } });
    expect(missing.error?.issues[0]?.message).to.equal(`missing: one toxic, of ${TOXICS.map((t) => t.name).join(', ')}`);
  });

  for (const toxic of TOXICS) {
    describe(toxic.name, () => {
      const fault = FaultSpec.parse({ id: 't', tcp: { listener: 'db', [toxic.name]: toxic.example } });

      it('parses from its example, survives the runner\'s round trip, and the JSON Schema has its field', () => {
        expect(jsonSchema.properties.tcp!.properties).to.have.property(toxic.name);
        expect(roundTrip(fault)).to.deep.equal({ ...fault, description: 'experiment:registry' });
      });

      it('reaches the proxy as its kind, which builds its stage', () => {
        const spec = toxicOf(fault.tcp!);
        expect(spec.kind).to.equal(toxic.kind);
        const stage = createStage(spec, link);
        expect(stage).to.be.instanceOf(ToxicStage);
        stage.destroy();
      });

      it('is described in docs/faults.md', () => {
        expect(docs).to.include(`\`${toxic.name}: {`);
      });
    });
  }
});
