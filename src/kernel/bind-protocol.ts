// What the resolver's bind helper (../resolver/bind-helper.ts, a program of its
// own) and the code that starts it (netns-sockets.ts) share: the address, the
// arguments and the messages on the IPC channel. A leaf: it imports nothing, so
// the helper can use it without loading the kernel adapters that start it.

export const RESOLVER_ADDRESS = '127.0.0.11';

export type Proto = 'udp' | 'tcp';

/** The helper's arguments: the ports to take again (0: the kernel chooses). */
export function helperArgs(wanted: { readonly udp: number; readonly tcp: number }): string[] {
  return ['--udp', String(wanted.udp), '--tcp', String(wanted.tcp)];
}

/**
 * Messages from the helper: one 'bound' per socket, sent with the socket's
 * handle, or one 'error'. `fallback` says the wanted port was taken and the
 * kernel chose another.
 */
export type HelperMessage =
  | {
      readonly type: 'bound';
      readonly proto: Proto;
      readonly port: number;
      readonly fallback: boolean;
      /** lo is down here: the bind worked, but nothing reaches 127.0.0.11 until lo is up. */
      readonly loDown: boolean;
    }
  | { readonly type: 'error'; readonly proto: Proto | 'args'; readonly code: string; readonly message: string };

export function isHelperMessage(value: unknown): value is HelperMessage {
  return typeof value === 'object' && value !== null && 'type' in value && (value.type === 'bound' || value.type === 'error');
}
