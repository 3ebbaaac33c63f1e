/**
 * Interface version compatibility between two related units. Each data
 * message carries the sender's interface version (messages.ts); the
 * receiver compares it with its own. The rule is the one users of
 * Juju-like systems expect from semantic versions: the same major version
 * is compatible whatever the minor or patch (a newer minor on the remote
 * side only adds keys, and unknown keys are ignored); a different major is
 * not, and that unit's bag is never applied as valid data. A message
 * without a version (written by an agent before versions were sent, or
 * kept in a link store since) is treated as compatible.
 */

export type InterfaceCompatibility =
  | { readonly compatible: true }
  | { readonly compatible: false; readonly remote: string; readonly local: string };

function major(version: string): number {
  return Number(version.split('.')[0]);
}

/** Whether a remote unit speaking `remote` (undefined = unknown, an older agent) can exchange bags with this one speaking `local`. */
export function interfaceCompatibility(remote: string | undefined, local: string): InterfaceCompatibility {
  if (remote === undefined || major(remote) === major(local)) return { compatible: true };
  return { compatible: false, remote, local };
}

/** The operator-facing line for an incompatible remote unit. */
export function incompatibleMessage(unit: string, interfaceName: string, remote: string, local: string): string {
  return `${unit} speaks ${interfaceName} ${remote}, this unit ${local}: upgrade one side (interface majors must match)`;
}
