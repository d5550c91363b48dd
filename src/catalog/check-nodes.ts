import { placeProblem } from './check-addresses.js';
import { meshPorts, presence, type Draft } from './draft.js';
import { joinPath, problem, quoted, shown } from './problems.js';
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
    out.push(...loadBalancerProblems(draft, name, node.loadBalancers ?? {}));
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

/**
 * A load balancer sits on one overlay network, with an address of its own there.
 * The ingress network has its own balancer, the sandbox, so it takes none.
 */
function loadBalancerProblems(draft: Draft, node: string, balancers: Readonly<Record<string, { readonly address: string }>>): CatalogProblem[] {
  const out: CatalogProblem[] = [];
  for (const [networkName, balancer] of Object.entries(balancers)) {
    const path = joinPath(`${joinPath('nodes', node)}.loadBalancers`, networkName);
    const network = draft.networks.entries.get(networkName);
    if (network === undefined) {
      if (presence(draft.networks, networkName) === 'missing') out.push(problem(path, `unknown network ${quoted(networkName)}`));
      continue;
    }
    if (network.ingress) {
      out.push(problem(path, `${shown(networkName)} is the ingress network, balanced in the ingress sandbox; `
        + 'a load balancer is for another network'));
      continue;
    }
    const bad = placeProblem(network, balancer.address, `${path}.address`);
    if (bad !== undefined) out.push(bad);
  }
  return out;
}
