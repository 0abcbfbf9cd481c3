// subset-selects-nothing: a route sends calls to a subset (labels) that no endpoint in the file has. It
// is no config error — instances that register themselves may bring it (a canary is "start instances
// with version=v2") — but until one does, that share of the calls is 503 UH; and a typo in a label
// looks exactly like this.
import type { Finding } from '../findings.ts';
import { finding, type Rule } from './rule.ts';

export const subsetSelectsNothing: Rule = {
  id: 'subset-selects-nothing',
  check(model) {
    const found: Finding[] = [];
    model.snapshot.config.routes.forEach((route, r) => {
      const total = route.destinations.reduce((sum, d) => sum + d.weight, 0);
      route.destinations.forEach((d, i) => {
        if (!d.subset || d.weight === 0) return;
        const service = model.snapshot.config.services.find((s) => s.name === d.service);
        const endpoints = (service?.endpoints ?? []).filter((e) => !(e as { registered?: string }).registered);
        if (endpoints.some((e) => Object.entries(d.subset!).every(([k, v]) => e.labels[k] === v))) return;
        const share = total > 0 ? Math.round((100 * d.weight) / total) : 0;
        const labels = Object.entries(d.subset).map(([k, v]) => `${k}=${v}`).join(', ');
        found.push(finding(model, 'subset-selects-nothing', {
          service: d.service,
          path: [d.service],
          route: route.name,
          at: model.where(['routes', r, 'destinations', i, 'subset']),
          message: `route ${route.name} sends ${share} % of its calls to ${d.service} {${labels}}, and no endpoint of ${d.service} in the file has ${Object.keys(d.subset).length > 1 ? 'these labels' : 'this label'}`,
          why: `until an instance with ${labels} registers, those calls are 503 UH (no endpoint); if the label is a typo, they always will be`,
          fix: `start instances with --labels ${labels.replace(/, /g, ',')}, list an endpoint with these labels, or correct the subset`,
          figures: [
            { name: `${d.service} endpoints in the file`, value: String(endpoints.length), origin: 'config' },
            { name: `route ${route.name} share to the subset`, value: `${share} %`, origin: 'config' },
          ],
        }));
      });
    });
    return found;
  },
};
