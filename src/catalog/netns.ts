// Namespace paths in one spelling. Each namespace belongs to one role on its
// node (check-namespaces.ts), and the planner keys its work by path, so
// `/run/netns//x`, `/var/run/netns/x`, `/run/netns/a/../x` and `/run/netns/x/`
// must all become `/run/netns/x`, or two roles would share a namespace unseen
// and their rules would undo each other on every pass. Text only: the file
// system is not asked (the namespace may not exist yet, and validation is pure).

/** Anything normalizeNetns would change: `//`, a `.` or `..` part, a trailing `/`, a leading /var/run. */
const UNUSUAL = /\/\/|\/\.\.?(?:\/|$)|.\/$|^\/var\/run(?:\/|$)/;

/** An absolute path in one spelling; a path already in it is returned as is (no copy). */
export function normalizeNetns(path: string): string {
  if (!UNUSUAL.test(path)) return path;
  const parts: string[] = [];
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') parts.pop();
    else parts.push(part);
    // /var/run is a symlink to /run on Debian (and wherever systemd runs), so a
    // `..` after it climbs out of /run, not /var/run.
    if (parts.length === 2 && parts[0] === 'var' && parts[1] === 'run') parts.splice(0, 2, 'run');
  }
  return `/${parts.join('/')}`;
}
