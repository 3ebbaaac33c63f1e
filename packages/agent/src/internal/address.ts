/**
 * Addresses of an agent on the network (Serf's `-bind` and `-advertise`).
 *
 * An agent binds one address (where its gossip socket listens) and
 * advertises another (what every other agent dials, the unit's address in
 * relation data and `unit.address`). The rules:
 *   - `HOST[:PORT]`; IPv6 hosts are bracketed when a port follows (`[::1]:7946`);
 *   - no advertise: the bind address, unless the bind host is a wildcard
 *     (`0.0.0.0`, `::`), which means "every interface" and is never an address
 *     anyone can dial: then the host's first non-loopback address (as Serf
 *     does), and the agent logs which;
 *   - an advertise without a port takes the bound port;
 *   - a wildcard is never advertised.
 */
import { isIP } from 'node:net';
import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os';
import { AgentError } from '../errors';

export interface HostPort {
  readonly host: string;
  /** Undefined when the text named no port. */
  readonly port: number | undefined;
}

const HOST_RE = /^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$/;

/** Parses `HOST[:PORT]`, `[V6]:PORT` or a bare IPv6 address; `what` names the flag in errors. */
export function parseHostPort(text: string, what: string): HostPort {
  const bad = (why: string): AgentError =>
    new AgentError('AGENT_ERR_BAD_CONFIG', `${what} ${JSON.stringify(text)} ${why}; write HOST[:PORT], e.g. 10.0.0.5:7946, 0.0.0.0 or [fd00::5]:7946`);
  let host: string;
  let portText: string | undefined;
  if (text.startsWith('[')) {
    const end = text.indexOf(']');
    if (end < 0) throw bad('has no closing "]"');
    host = text.slice(1, end);
    const rest = text.slice(end + 1);
    if (rest !== '' && !rest.startsWith(':')) throw bad('has text after "]" that is not ":PORT"');
    portText = rest === '' ? undefined : rest.slice(1);
    if (isIP(host) !== 6) throw bad('has a bracketed host that is not an IPv6 address');
  } else if ((text.match(/:/g) ?? []).length > 1) {
    host = text;
    if (isIP(host) !== 6) throw bad('is not an IPv6 address (bracket it to add a port: [::1]:7946)');
  } else {
    const i = text.indexOf(':');
    host = i < 0 ? text : text.slice(0, i);
    portText = i < 0 ? undefined : text.slice(i + 1);
    if (isIP(host) === 0 && !HOST_RE.test(host)) throw bad('does not name a host');
  }
  let port: number | undefined;
  if (portText !== undefined) {
    if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535) throw bad('has a port that is not a number in 0..65535');
    port = Number(portText);
  }
  return { host, port };
}

export function formatHostPort(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

export function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '[::]';
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/**
 * The host's first non-loopback address, IPv4 first for an IPv4 wildcard
 * (interfaces in the order the OS lists them, as Serf's GetPrivateIP walks
 * them). Undefined when there is none.
 */
export function firstNonLoopbackAddress(family: 4 | 6 = 4, interfaces: NodeJS.Dict<NetworkInterfaceInfo[]> = networkInterfaces()): { address: string; iface: string } | undefined {
  for (const [iface, infos] of Object.entries(interfaces)) {
    for (const info of infos ?? []) {
      if (info.internal) continue;
      const fam = info.family === 'IPv4' || (info.family as unknown) === 4 ? 4 : 6;
      if (fam !== family) continue;
      // A link-local IPv6 address needs a zone to be dialled: not an address to give others.
      if (fam === 6 && info.address.toLowerCase().startsWith('fe80:')) continue;
      return { address: info.address, iface };
    }
  }
  return undefined;
}

export interface ResolvedAddresses {
  readonly bindHost: string;
  /** The advertised host: never a wildcard. */
  readonly advertiseHost: string;
  /** The advertised port, if known before binding (undefined: the bound port). */
  readonly advertisePort: number | undefined;
  /** Set when the advertised host was chosen for a wildcard bind (for the log). */
  readonly chosen?: { readonly iface: string; readonly reason: string };
}

/** Decides the advertised host from the bind and (optional) advertise settings. */
export function resolveAdvertise(
  bindHost: string,
  advertise: HostPort | undefined,
  interfaces?: NodeJS.Dict<NetworkInterfaceInfo[]>,
): ResolvedAddresses {
  if (advertise !== undefined) {
    if (isWildcard(advertise.host)) {
      throw new AgentError('AGENT_ERR_BAD_CONFIG', `--advertise ${advertise.host} is a wildcard, which no other agent can dial; advertise this host's address on the network (e.g. --advertise 10.0.0.5)`);
    }
    return { bindHost, advertiseHost: advertise.host, advertisePort: advertise.port };
  }
  if (!isWildcard(bindHost)) return { bindHost, advertiseHost: bindHost, advertisePort: undefined };
  const family = bindHost === '0.0.0.0' ? 4 : 6;
  const found = firstNonLoopbackAddress(family, interfaces) ?? (family === 6 ? firstNonLoopbackAddress(4, interfaces) : undefined);
  if (!found) {
    throw new AgentError('AGENT_ERR_BAD_CONFIG', `--bind ${bindHost} listens on every interface, but this host has no non-loopback address to advertise; pass --advertise HOST (the address other machines reach this one at)`);
  }
  return { bindHost, advertiseHost: found.address, advertisePort: undefined, chosen: { iface: found.iface, reason: `bind ${bindHost} is a wildcard; advertising the first non-loopback address` } };
}
