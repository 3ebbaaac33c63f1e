/**
 * Gossip keys, as `serf keygen` / `serf keys`:
 *   rhizome keygen                 prints a new random key (base64, 32 bytes)
 *   rhizome keys list              every live member's keys, with how many hold each
 *   rhizome keys install KEY       add KEY to every live member's keyring
 *   rhizome keys use KEY           make KEY the primary everywhere (install it first)
 *   rhizome keys remove KEY        drop KEY everywhere (never the primary)
 * `keys` goes through the local agent (see target.ts) to the mesh; each member
 * answers and rewrites its own keyring file. The command reports how many
 * members acknowledged and which did not, and exits 1 unless all did.
 */
import type { Command } from 'commander';
import { AgentError } from '../../errors';
import { generateKey } from '../../keys/keyring-file';
import type { KeyResponse } from '@rhizome/gossip';
import { printJson, table } from '../output';
import { anyClient, resolveTarget, type GlobalOptions } from '../target';

/** The control API's answer to POST /keys: the gossip key manager's response, as JSON. */
export type KeysReport = KeyResponse;

export function renderKeysReport(r: KeysReport): string {
  const out: string[] = [];
  const acked = r.responses - Object.keys(r.errors).length;
  out.push(`${r.operation}: ${acked}/${r.members} member(s) acknowledged`);
  for (const [member, error] of Object.entries(r.errors).sort()) out.push(`  ${member}: failed: ${error}`);
  for (const member of [...r.missing].sort()) out.push(`  ${member}: no answer (missed this operation; run it again)`);
  if (r.operation === 'list') {
    out.push(
      table(
        ['Key', 'Members', 'Primary on'],
        Object.entries(r.keys).map(([k, n]) => [k, `${n}/${r.members}`, String(r.primaryKeys[k] ?? 0)]),
      ),
    );
  }
  return out.join('\n');
}

export function registerKeys(program: Command, globals: () => GlobalOptions): void {
  program
    .command('keygen')
    .description('print a new gossip encryption key (base64, 32 bytes) for a keyring file')
    .action(() => {
      process.stdout.write(`${generateKey()}\n`);
    });

  const keys = program.command('keys').description("change every live member's gossip keyring at run time (serf keys)");
  const run = async (operation: KeysReport['operation'], key?: string): Promise<void> => {
    const g = globals();
    const client = await anyClient(g);
    const report = await client.post<KeysReport>('/keys', { operation, ...(key !== undefined ? { key } : {}) });
    if (g.json) printJson(report);
    else process.stdout.write(`${renderKeysReport(report)}\n`);
    if (report.ok && operation !== 'list') {
      // The deployment's copy of the keyring is what later add-unit and start give a machine: keep it in step.
      const t = await resolveTarget(g);
      if (t.kind === 'deployment') {
        const { deploymentKeyringFile, syncDeploymentKeyring } = await import('../../deploy/keyring-sync');
        await syncDeploymentKeyring(t.deployment, deploymentKeyringFile(t.deployment));
      }
    }
    if (!report.ok) {
      throw new AgentError('AGENT_ERR_KEYS', `keys ${operation}: ${report.members - (report.responses - Object.keys(report.errors).length)} of ${report.members} member(s) did not acknowledge; fix them and run it again before the next step`);
    }
  };
  keys.command('list').description('keys of every live member').action(() => run('list'));
  keys.command('install').argument('<key>', 'base64 key').description('add a key to every member').action((key: string) => run('install', key));
  keys.command('use').argument('<key>', 'base64 key').description('make an installed key the primary on every member').action((key: string) => run('use', key));
  keys.command('remove').argument('<key>', 'base64 key').description('remove a (non-primary) key from every member').action((key: string) => run('remove', key));
}
