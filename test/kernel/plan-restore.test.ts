// Every iptables-restore section `vipmesh plan` prints is accepted by the real
// iptables-restore inside a throwaway namespace, and iptables-save prints our
// rules back exactly as we rendered them (the diff relies on that).
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import test from 'node:test';
import { loadCatalog } from '../../src/catalog/load.js';
import { vipmesh } from '../helpers/cli.js';
import { inNetns, netns } from '../helpers/netns.js';
import { FIXTURES } from '../helpers/paths.js';
import { expectedSaveLines, splitPlanText, substituteTokens } from '../helpers/plan-text.js';

const fixtures = readdirSync(FIXTURES).filter((f) => f.endsWith('.yaml')).sort();

for (const fixture of fixtures) {
  const loaded = await loadCatalog(join(FIXTURES, fixture));
  assert.ok(loaded.ok);
  for (const node of Object.keys(loaded.catalog.nodes).sort()) {
    test(`iptables accepts every section of plan ${fixture} --node ${node}`, async (t) => {
      const result = await vipmesh(['plan', '-c', join(FIXTURES, fixture), '--node', node]);
      assert.equal(result.exitCode, 0, result.stderr);
      const printed = splitPlanText(result.stdout);
      for (const section of printed) {
        for (const [family, text] of [[4, section.iptables], [6, section.ip6tables]] as const) {
          if (text === '') continue;
          const restore = substituteTokens(text);
          const [restoreCmd, saveCmd] = family === 4 ? ['iptables-restore', 'iptables-save'] : ['ip6tables-restore', 'ip6tables-save'];
          const name = await netns(t);
          await inNetns(name, restoreCmd, ['--test', '--noflush'], restore);
          await inNetns(name, restoreCmd, ['--noflush'], restore);
          const saved = (await inNetns(name, saveCmd, [])).split('\n');
          for (const line of expectedSaveLines(restore)) {
            assert.ok(saved.includes(line), `${section.key} (IPv${family}): iptables-save does not print back\n  ${line}\nit printed:\n${saved.filter((l) => l.includes('VIPMESH')).join('\n')}`);
          }
          assert.equal(
            saved.filter((l) => l.includes('VIPMESH-') && l.startsWith('-A ')).length,
            expectedSaveLines(restore).length,
            `${section.key} (IPv${family}): exactly the planned rules, no more`,
          );
        }
      }
    });
  }
}
