/**
 * `host:port` for configuration files and URLs: an IPv6 address is
 * bracketed (`[fd00::1]:8020`), as Hadoop, URLs and most daemons require;
 * names and IPv4 addresses are written as they are.
 */
export function hostPort(host: string, port: number): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]:${port}` : `${host}:${port}`;
}
