import { placeProblem } from './check-addresses.js';
import { meshPorts, type Draft } from './draft.js';
import { joinPath, problem } from './problems.js';
import type { CatalogProblem } from './types.js';

/** The first ingress-mode port in name order, as the reason every node needs a sandbox. */
function firstIngressPort(draft: Draft): string | undefined {
  for (const [name, { service }] of draft.services.entries) {
    const [first] = meshPorts(service);
    if (first !== undefined) {
      return `${joinPath('services', name)}.ports[${first.index}] publishes ${first.port.published}/${first.port.protocol} in ingress mode`;
    }
  }
  return undefined;
}

export function checkNodes(draft: Draft): CatalogProblem[] {
  const out: CatalogProblem[] = [];
  const reason = firstIngressPort(draft);
  for (const [name, node] of draft.nodes.entries) {
    const sandbox = node.ingressSandbox;
    if (sandbox === undefined) {
      if (reason !== undefined) {
        out.push(problem(`${joinPath('nodes', name)}.ingressSandbox`,
          `is required because ${reason} (the routing mesh runs in every node's ingress sandbox)`));
      }
      continue;
    }
    const path = `${joinPath('nodes', name)}.ingressSandbox.address`;
    if (draft.ingress !== undefined) {
      const bad = placeProblem(draft.ingress, sandbox.address, path);
      if (bad !== undefined) out.push(bad);
    } else if (!draft.ingressUnknown) {
      out.push(problem(path, 'there is no ingress network (a network with ingress: true) for the sandbox to be on'));
    }
  }
  return out;
}
