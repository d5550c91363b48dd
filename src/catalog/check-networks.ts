import { cidrOf } from './check-addresses.js';
import type { Draft } from './draft.js';
import { overlap } from './ip.js';
import { joinPath, problem, shown } from './problems.js';
import type { CatalogProblem } from './types.js';

export function checkNetworks(draft: Draft): CatalogProblem[] {
  const out: CatalogProblem[] = [];
  const networks = [...draft.networks.entries.values()];
  for (const network of networks) {
    if (!network.ingress) continue;
    if (network !== draft.ingress && draft.ingress !== undefined) {
      out.push(problem(`${joinPath('networks', network.name)}.ingress`,
        `${shown(draft.ingress.name)} is already the ingress network; there can be only one`));
    }
    if (network.family === 6) out.push(problem(`${joinPath('networks', network.name)}.ingress`, 'the ingress network must be IPv4 for now'));
  }
  // A task on two overlapping networks could not tell which interface an address is behind.
  for (const [i, later] of networks.entries()) {
    const earlier = networks.slice(0, i).find((n) => overlap(cidrOf(n), cidrOf(later)));
    if (earlier !== undefined) {
      out.push(problem(`${joinPath('networks', later.name)}.subnet`, `${later.subnet} overlaps ${shown(earlier.name)}'s subnet ${earlier.subnet}`));
    }
  }
  return out;
}
