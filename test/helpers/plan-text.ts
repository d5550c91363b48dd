// Splits `vipmesh plan` text back into its parts, the way an operator's script would.
export interface PrintedNamespace {
  readonly key: string;
  readonly iptables: string;
  readonly ip6tables: string;
  readonly ipvs: string;
  readonly sysctls: readonly string[];
}

export function splitPlanText(text: string): PrintedNamespace[] {
  const result: PrintedNamespace[] = [];
  for (const section of text.split(/^(?=# netns )/m)) {
    if (section.trim() === '') continue;
    const lines = section.split('\n');
    const key = lines[0]!.slice('# netns '.length);
    let v4 = '';
    let v6 = '';
    let ipvs = '';
    const sysctls: string[] = [];
    let family: 4 | 6 = 4;
    let inTable = false;
    for (const line of lines.slice(1)) {
      if (line === '') continue;
      if (line === '# ip6tables') family = 6;
      else if (line.startsWith('# sysctl ')) sysctls.push(line.slice('# sysctl '.length));
      else if (line.startsWith('*')) inTable = true;
      if (inTable) {
        if (family === 4) v4 += line + '\n';
        else v6 += line + '\n';
        if (line === 'COMMIT') inTable = false;
      } else if (line.startsWith('-A -f') || line.startsWith('-a -f')) {
        ipvs += line + '\n';
      }
    }
    result.push({ key, iptables: v4, ip6tables: v6, ipvs, sysctls });
  }
  return result;
}

/** Fills the resolver-port tokens the way a running agent would. */
export function substituteTokens(text: string): string {
  return text.replaceAll('UDP_PORT', '40053').replaceAll('TCP_PORT', '40054');
}

/** What iptables-save prints of our rules after a restore: `-A` lines, jumps included. */
export function expectedSaveLines(restore: string): string[] {
  return restore
    .split('\n')
    .filter((l) => l.startsWith('-A ') || l.startsWith('-I '))
    .map((l) => (l.startsWith('-I ') ? `-A ${l.slice(3)}` : l));
}
