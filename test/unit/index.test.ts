// The public entry point: a program that embeds vipmesh imports it by the
// package's name and gets the loader, the planner and the renderers.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'node:test';
import { FIXTURES, GOLDEN } from '../helpers/paths.js';

test('import "vipmesh" loads, plans and renders a catalog as the CLI prints it', async () => {
  const vipmesh = await import('vipmesh');
  const loaded = await vipmesh.loadCatalog(join(FIXTURES, 'article-003-whoami.yaml'));
  assert.ok(loaded.ok, loaded.ok ? '' : vipmesh.formatProblems(loaded.problems));
  const plan = vipmesh.planNode(loaded.catalog, 'node-1', vipmesh.EMPTY_FACTS);
  assert.equal(vipmesh.renderPlanText(plan), readFileSync(join(GOLDEN, 'article-003-whoami--node-1.txt'), 'utf8'));
  assert.deepEqual(vipmesh.planNode(loaded.catalog, 'no-such-node', vipmesh.EMPTY_FACTS).namespaces, []);
});

test('an invalid catalog comes back as problems with paths, not an exception', async () => {
  const vipmesh = await import('vipmesh');
  const loaded = vipmesh.parseCatalog('version: 1\nnetworks: { appnet: { subnet: nope } }\n');
  assert.equal(loaded.ok, false);
  assert.match(loaded.ok ? '' : vipmesh.formatProblems(loaded.problems), /networks\.appnet\.subnet/);
});
