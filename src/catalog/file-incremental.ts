// A catalog file read again after it changed, validated by difference from the
// last reading (issue 15): the parsed document's objects are compared with the
// last ones (as JSON text) and only those that differ become changes for
// IncrementalCatalog. Parsing the whole file is still needed — a file has no
// per-object events — so this saves the validation and, through the planner's
// lineage, the planning, not the parse. Anything beyond plain data at the top
// (a parse problem, an unknown section, another version) is read as
// parseCatalogText reads it, problems and all.
import { COLLECTIONS, type Collection, type ObjectChange } from './change.js';
import { isRecord } from './fields.js';
import { IncrementalCatalog, type IncrementalResult } from './incremental.js';
import { parseText } from './parse-text.js';
import { plainTopLevel } from './plain-entries.js';
import { sortProblems } from './problems.js';
import { validateCatalog, type ValidationResult } from './validate.js';

export class FileCatalog {
  private inc: IncrementalCatalog | undefined;
  private texts: Record<Collection, Map<string, string>> | undefined;

  /** The catalog the text holds, validated by difference from the last text read when it can be. */
  read(text: string): IncrementalResult {
    const parsed = parseText(text);
    if (!('value' in parsed) || parsed.problems.length > 0 || !isRecord(parsed.value) || !plainTopLevel(parsed.value)) {
      this.inc = undefined;
      this.texts = undefined;
      return { result: parsedInFull(parsed), path: 'full' };
    }
    const raw = parsed.value;
    const sections = Object.fromEntries(COLLECTIONS.map((c) => [c, isRecord(raw[c]) ? Object.entries(raw[c]) : []])) as Record<Collection, [string, unknown][]>;
    const texts = Object.fromEntries(COLLECTIONS.map((c) => [c, new Map(sections[c].map(([name, value]) => [name, JSON.stringify(value)]))])) as Record<Collection, Map<string, string>>;
    const before = this.texts;
    this.texts = texts;
    if (this.inc === undefined || before === undefined) {
      this.inc = new IncrementalCatalog(sections);
      return { result: this.inc.result, path: 'full' };
    }
    const changes: ObjectChange[] = [];
    for (const collection of COLLECTIONS) {
      const values = new Map(sections[collection]);
      for (const [name, json] of texts[collection]) if (before[collection].get(name) !== json) changes.push({ collection, name, value: values.get(name) });
      for (const name of before[collection].keys()) if (!texts[collection].has(name)) changes.push({ collection, name, value: undefined });
    }
    return this.inc.apply(changes);
  }
}

/** What load.ts's parseCatalogText makes of a parse: the validation, with the parse's own problems. */
function parsedInFull(parsed: ReturnType<typeof parseText>): ValidationResult {
  if (!('value' in parsed)) return { ok: false, problems: sortProblems(parsed.problems) };
  const validated = validateCatalog(parsed.value);
  if (parsed.problems.length === 0) return validated;
  return { ok: false, problems: sortProblems([...parsed.problems, ...(validated.ok ? [] : validated.problems)]) };
}
