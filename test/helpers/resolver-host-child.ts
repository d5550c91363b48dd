// A stand-in for the agent, for test/kernel/resolver-host.test.ts: a process that
// runs the resolver host for one catalog, says `ready` with its ports on stdout,
// and stops the host on SIGTERM as the agent does. Its killer then checks what
// the resolver left behind.
//   node resolver-host-child.js CATALOG NODE RUN_DIR ETC_NETNS
import { loadCatalog } from '../../src/catalog/load.js';
import { startResolverHost } from '../../src/resolver/host.js';

const [file, node, runDir, etcNetns] = process.argv.slice(2);
if (file === undefined || node === undefined || runDir === undefined || etcNetns === undefined) {
  process.stderr.write('usage: resolver-host-child.js CATALOG NODE RUN_DIR ETC_NETNS\n');
  process.exit(2);
}
const loaded = await loadCatalog(file);
if (!loaded.ok) throw new Error(`${file} is not a valid catalog`);
const host = await startResolverHost({ node, runDir, etcNetns, upstreams: [], search: [], log: (level, message) => process.stderr.write(`${level} ${message}\n`) });
const report = await host.update(loaded.catalog, new Map(), new Set());
process.once('SIGTERM', () => {
  void host.stop().then(() => {
    process.stdout.write('stopped\n');
    process.exit(0);
  });
});
process.stdout.write(`${JSON.stringify({ ready: true, serving: report.serving, ports: Object.fromEntries(host.ports()) })}\n`);
