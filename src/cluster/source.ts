// Where a catalog comes from (SPEC §4, §6): a file path, or an etcd cluster and
// the key prefix under which it keeps the catalog. Pure: parsing only.
export type CatalogSource =
  | { readonly kind: 'file'; readonly path: string }
  | {
    readonly kind: 'etcd';
    /** etcds://: TLS (the CA and client certificate come from --etcd-ca/--etcd-cert/--etcd-key). */
    readonly secure: boolean;
    /** host:port, as written; at least one. */
    readonly endpoints: readonly string[];
    /** The key prefix, with its leading slash and without a trailing one: "/vipmesh". */
    readonly prefix: string;
    /** The source as the operator wrote it, for messages. */
    readonly text: string;
  };

export type SourceParse = { ok: true; source: CatalogSource } | { ok: false; message: string };

const SCHEMES: Readonly<Record<string, boolean>> = { 'etcd:': false, 'etcds:': true };

/** A host name, an IPv4 address or a bracketed IPv6 address, then :port. */
const ENDPOINT = /^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\]):(\d{1,5})$/;

/** Anything not etcd:// or etcds:// is a file path, as -c has always taken. */
export function parseSource(text: string): SourceParse {
  const scheme = /^([a-z][a-z0-9+.-]*:)\/\//i.exec(text)?.[1]?.toLowerCase();
  if (scheme === undefined) return { ok: true, source: { kind: 'file', path: text } };
  const secure = SCHEMES[scheme];
  if (secure === undefined) return { ok: false, message: `${text}: a catalog source is a file path, etcd://HOST:PORT[,HOST:PORT…]/PREFIX or etcds://…` };
  const rest = text.slice(scheme.length + 2);
  const slash = rest.indexOf('/');
  const hosts = slash === -1 ? rest : rest.slice(0, slash);
  const path = slash === -1 ? '' : rest.slice(slash);
  const endpoints = hosts.split(',');
  for (const endpoint of endpoints) {
    const match = ENDPOINT.exec(endpoint);
    const port = match === null ? NaN : Number(match[1]);
    if (!(port >= 1 && port <= 65535)) {
      return { ok: false, message: `${text}: ${endpoint === '' ? 'an empty endpoint' : `endpoint "${endpoint}"`} is not HOST:PORT` };
    }
  }
  const prefix = path.replace(/\/+$/, '');
  if (prefix === '') return { ok: false, message: `${text}: the key prefix is missing (etcd://HOST:PORT/PREFIX, e.g. /vipmesh)` };
  if (/[?#]/.test(prefix) || prefix.includes('//')) return { ok: false, message: `${text}: the key prefix "${prefix}" must be a plain path, without "?", "#" or "//"` };
  return { ok: true, source: { kind: 'etcd', secure, endpoints, prefix, text } };
}
