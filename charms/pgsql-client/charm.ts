/**
 * pgsql-client: the smallest real client of the postgresql charm. It
 * requires `db` (pgsql), receives the primary's address, database, user
 * and password over the relation, proves them with a query over TCP, and
 * keeps them in `connection.json` in its unit dir (0600) for the workload
 * (and the end-to-end test) to use. The password is never logged.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { defineCharm } from '@rhizome/agent';
import { all, fact, not, relationEvent, relationFact, type HandlerContext } from '@rhizome/engine';
import { relation } from '@rhizome/relations';
import { writeFileAtomic } from '@rhizome-charms/kit';
import { pgsql } from '@rhizome-charms/postgresql/interfaces';

function query(conn: { host: string; port: number; database: string; user: string; password: string }, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('psql', ['-h', conn.host, '-p', String(conn.port), '-U', conn.user, '-d', conn.database, '-X', '-t', '-A', '-w', '-c', text], {
      env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', PGPASSWORD: conn.password, PGCONNECT_TIMEOUT: '5' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (err += d.toString('utf8')));
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`psql to ${conn.host}:${conn.port} failed: ${err.trim().slice(0, 500)}`))));
  });
}

export default defineCharm({
  metadata: { name: 'pgsql-client', description: 'PostgreSQL client over the pgsql interface', requires: { db: { interface: 'pgsql' } } },
  interfaces: [pgsql],
  handlers: (unit) => {
    const connect = async (ctx: HandlerContext): Promise<void> => {
      const [db] = relation(ctx, 'db', pgsql.requirer).all();
      if (!db) return;
      let version: string;
      try {
        version = await query(db.data, 'SHOW server_version;');
      } catch (err) {
        // An unreachable primary is the workload's state, not a bug in this handler: while units
        // start, a unit that named itself primary may step down. A new primary arrives as a change.
        ctx.setStatus('waiting', `cannot reach the primary ${db.data.host}:${db.data.port} yet: ${(err as Error).message.slice(0, 200)}`);
        return;
      }
      await writeFileAtomic(join(unit.dir, 'connection.json'), `${JSON.stringify(db.data)}\n`, 0o600);
      ctx.set('db.connected', `${db.data.host}:${db.data.port}`);
      ctx.setStatus('active', `connected to ${db.data.database} on ${db.data.host}:${db.data.port} as ${db.data.user} (PostgreSQL ${version})`);
    };
    return [
      { name: 'connect', when: relationFact('db', 'available'), run: connect },
      // New credentials or a new primary address arrive as a change of the primary's bag.
      { name: 'reconnect', when: all(relationEvent('db', 'changed'), relationFact('db', 'available')), run: connect },
      {
        name: 'wait-for-db',
        atStartup: true,
        when: all(not(relationFact('db', 'available')), not(fact('db.connected'))),
        run: (ctx) => ctx.setStatus('blocked', 'waiting for a postgresql primary (relate db)'),
      },
    ];
  },
});
