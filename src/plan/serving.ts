// Which tasks are real servers (and answer in DNS). Pure; shared with the resolver.
import type { Catalog, Task } from '../catalog/types.js';

/**
 * A task serves when it runs and is not unhealthy. A local task of a service with
 * a healthcheck serves only once the agent's probe passed (as Swarm waits for the
 * first healthy event); remote tasks keep the catalog's word.
 */
export function serves(
  catalog: Catalog,
  task: Task,
  localNode: string,
  probes: ReadonlyMap<string, boolean>,
): boolean {
  if (task.state !== 'running') return false;
  const service = task.service === undefined ? undefined : catalog.services[task.service];
  if (service?.healthcheck !== undefined && task.node === localNode) {
    return probes.get(task.name) === true;
  }
  return task.health !== 'unhealthy';
}
