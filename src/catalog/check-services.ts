import { addressProblem, ipOf } from './check-addresses.js';
import { presence, type Draft, type ServiceEntry } from './draft.js';
import { joinPath, problem, quoted, shown, shownList } from './problems.js';
import type { CatalogProblem } from './types.js';

function vipMode(draft: Draft, base: string, { input, service }: ServiceEntry): CatalogProblem[] {
  const out: CatalogProblem[] = [];
  if (Object.keys(service.vips).length === 0) {
    out.push(problem(`${base}.vips`, input.vips === undefined
      ? 'is required in vip mode: one VIP per network the service is on'
      : 'needs at least one VIP in vip mode'));
  }
  for (const [network, vip] of Object.entries(service.vips)) {
    const path = joinPath(`${base}.vips`, network);
    const bad = ipOf(vip).family === 6 ? problem(path, 'IPv6 VIPs are not supported yet') : addressProblem(draft, network, vip, path);
    if (bad !== undefined) out.push(bad);
  }
  const seen = new Set<string>();
  for (const [i, network] of (input.networks ?? []).entries()) {
    const path = `${base}.networks[${i}]`;
    if (seen.has(network)) out.push(problem(path, `${shown(network)} is listed twice`));
    else if (presence(draft.networks, network) === 'missing') out.push(problem(path, `unknown network ${quoted(network)}`));
    else if (service.vips[network] === undefined) {
      out.push(problem(path, `${shown(network)} has no VIP in vips; in vip mode every network of the service needs one`));
    }
    seen.add(network);
  }
  return out;
}

function dnsrrMode(draft: Draft, base: string, { input }: ServiceEntry): CatalogProblem[] {
  const out: CatalogProblem[] = [];
  if (input.vips !== undefined && Object.keys(input.vips).length > 0) {
    out.push(problem(`${base}.vips`, 'a dnsrr service has no VIPs: remove vips, or use endpointMode: vip'));
  }
  if (input.networks === undefined) out.push(problem(`${base}.networks`, 'is required in dnsrr mode: the networks the service is on'));
  else if (input.networks.length === 0) out.push(problem(`${base}.networks`, 'needs at least one network in dnsrr mode'));
  const seen = new Set<string>();
  for (const [i, network] of (input.networks ?? []).entries()) {
    const path = `${base}.networks[${i}]`;
    if (seen.has(network)) out.push(problem(path, `${shown(network)} is listed twice`));
    else if (presence(draft.networks, network) === 'missing') out.push(problem(path, `unknown network ${quoted(network)}`));
    else if (network === draft.ingress?.name) out.push(problem(path, 'a dnsrr service can\'t be on the ingress network'));
    seen.add(network);
  }
  return out;
}

function ports(draft: Draft, base: string, { service }: ServiceEntry): CatalogProblem[] {
  const out: CatalogProblem[] = [];
  const ingress = draft.ingress?.name;
  for (const [i, port] of service.ports.entries()) {
    const path = `${base}.ports[${i}]`;
    if (port.mode === 'ingress') {
      if (service.endpointMode === 'dnsrr') {
        out.push(problem(`${path}.mode`, 'a port published in ingress mode can\'t be used with dnsrr mode'));
      } else if (ingress === undefined && !draft.ingressUnknown) {
        out.push(problem(`${path}.mode`, 'an ingress-mode port needs an ingress network (a network with ingress: true)'));
      }
      if (port.network !== undefined) out.push(problem(`${path}.network`, 'only a host-mode port can name a network'));
    } else if (port.network !== undefined) {
      if (port.network === ingress) {
        out.push(problem(`${path}.network`, 'host-mode traffic can\'t go to the ingress network; name another of the service\'s networks'));
      } else if (!service.networks.includes(port.network)) {
        out.push(problem(`${path}.network`, presence(draft.networks, port.network) === 'missing'
          ? `unknown network ${quoted(port.network)}`
          : `${shown(port.network)} is not one of the service's networks (${shownList(service.networks) || 'none'})`));
      }
    } else if (service.networks.every((n) => n === ingress)) {
      out.push(problem(`${path}.mode`, 'a host-mode port needs a network of the service besides ingress to send traffic to'));
    }
  }
  return out;
}

export function checkServices(draft: Draft): CatalogProblem[] {
  const out: CatalogProblem[] = [];
  for (const [name, entry] of draft.services.entries) {
    const base = joinPath('services', name);
    out.push(...(entry.service.endpointMode === 'vip' ? vipMode(draft, base, entry) : dnsrrMode(draft, base, entry)));
    out.push(...ports(draft, base, entry));
  }
  return out;
}
