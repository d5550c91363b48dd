import type { z } from 'zod';
import { joinPath, problem, quoted } from './problems.js';
import type { CatalogProblem } from './types.js';

/** Reached only by a zod issue no schema gave a message to; keeps zod's wording out of the output. */
export const fallbackMessage = { error: (): string => 'is not valid here' };

export function problemsFromZod(base: string, error: z.ZodError): CatalogProblem[] {
  const out: CatalogProblem[] = [];
  for (const issue of error.issues) {
    const path = issue.path.reduce<string>(
      (p, seg) => joinPath(p, typeof seg === 'number' ? seg : String(seg)), base);
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) out.push(problem(joinPath(path, key), `unknown field ${quoted(key)}`));
    } else {
      out.push(problem(path, issue.message));
    }
  }
  return out;
}
