// The whole node plan as `vipmesh plan` prints it: per namespace a `# netns` line,
// its iptables-restore text (IPv6 after a `# ip6tables` line), its IPVS state in
// ipvsadm-save syntax, its sysctls as `# sysctl` lines and, in a load balancer,
// its VIP addresses as `# address` lines.
//
// A node's plan can be larger than the longest string V8 can hold (1 000 VIP services
// seen from 3 000 local tasks is gigabytes of text), so the renderers are generators
// that yield one namespace at a time; the whole-string forms are their concatenation,
// kept for tests and small plans.
import type { NamespacePlan, NodePlan, VipAddress } from '../plan/types.js';
import { renderRestore } from './iptables.js';
import { renderIpvs } from './ipvs.js';

/**
 * The key as printed after `# netns `. A path is printed as it is unless a reader
 * could take it for something else: one holding a control character (a newline
 * would end the line and forge the next one), a line or paragraph separator, or
 * starting with a double quote is printed as a JSON string instead (`"/run/netns/a\nb"`),
 * with the C1 controls, DEL, U+2028 and U+2029 escaped as `\uXXXX` too. So a key
 * that starts with `"` is always JSON, anything else is the path byte for byte.
 */
export function printablePath(key: string): string {
  if (!/^"|[\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(key)) return key;
  return JSON.stringify(key).replace(/[\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** A VIP address of a load balancer: `# address 10.0.1.2/32 beside 10.0.1.250` (the interface holding that one). */
export function addressLine(a: VipAddress): string {
  return `# address ${a.address}/${a.prefixLength} beside ${a.anchor}`;
}

export function renderNamespaceText(ns: NamespacePlan): string {
  let text = `# netns ${printablePath(ns.key)}\n`;
  text += renderRestore(ns.chains, 4);
  const v6 = renderRestore(ns.chains, 6);
  if (v6 !== '') text += `# ip6tables\n${v6}`;
  text += renderIpvs(ns.ipvs);
  for (const s of ns.sysctls) text += `# sysctl ${s.name}=${s.value}\n`;
  for (const a of ns.addresses ?? []) text += `${addressLine(a)}\n`;
  return text;
}

/** The plan text one namespace per chunk; namespaces are separated by an empty line. */
export function* renderPlanTextChunks(plan: NodePlan): Generator<string, void, undefined> {
  let first = true;
  for (const ns of plan.namespaces) {
    yield first ? renderNamespaceText(ns) : `\n${renderNamespaceText(ns)}`;
    first = false;
  }
}

export function renderPlanText(plan: NodePlan): string {
  return [...renderPlanTextChunks(plan)].join('');
}

/**
 * A value in JSON.stringify's 2-space layout, indented as it sits in the plan: the
 * namespaces (depth 2, inside the array) or a top-level field (depth 1). JSON.stringify
 * lays it out inside a wrapper of that depth, and the wrapper is cut off again —
 * twice as fast as re-indenting the text, which matters at gigabytes.
 */
function nested(value: unknown, depth: 1 | 2): string {
  const [wrapped, head, tail] = depth === 1 ? [{ x: value }, '{\n  "x": ', '\n}'] : [{ x: [value] }, '{\n  "x": [\n    ', '\n  ]\n}'];
  const text = JSON.stringify(wrapped, null, 2);
  return text.slice(head.length, text.length - tail.length);
}

/**
 * A namespace as `plan --format json` publishes it. A virtual service's typed
 * `balances` is the reconciler's key and was never part of that form: leaving it
 * out keeps the published JSON as it was.
 */
function published(ns: NamespacePlan): unknown {
  if (ns.ipvs.length === 0) return ns;
  return { ...ns, ipvs: ns.ipvs.map(({ balances: _balances, ...rest }) => rest) };
}

/**
 * The bytes of `JSON.stringify(plan, null, 2) + '\n'` without each virtual service's
 * `balances`, the namespaces array one element per chunk and every other field of the plan whole.
 */
export function* renderPlanJsonChunks(plan: NodePlan): Generator<string, void, undefined> {
  // Fields JSON.stringify would leave out (undefined, functions) are left out here too.
  const fields = Object.entries(plan).filter(([, value]) => value !== undefined && typeof value !== 'function' && typeof value !== 'symbol');
  if (fields.length === 0) {
    yield '{}\n';
    return;
  }
  yield '{';
  for (const [i, [key, value]] of fields.entries()) {
    const head = `${i === 0 ? '' : ','}\n  ${JSON.stringify(key)}: `;
    if (key === 'namespaces' && Array.isArray(value) && value.length > 0) {
      yield `${head}[`;
      for (const [j, ns] of (value as readonly NamespacePlan[]).entries()) yield `${j === 0 ? '' : ','}\n    ${nested(published(ns), 2)}`;
      yield '\n  ]';
    } else {
      yield `${head}${nested(value, 1)}`;
    }
  }
  yield '\n}\n';
}

export function renderPlanJson(plan: NodePlan): string {
  return [...renderPlanJsonChunks(plan)].join('');
}
