import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync, rmSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { agentCommand, clientFor, readDeployment } from '/work/h-foot/packages/agent/dist/index.js';
const N = Number(process.argv[2] ?? 5);
const extraNodeArgs = (process.env.FT_NODE_ARGS ?? '').split(' ').filter(Boolean);
const d = await readDeployment('/tmp/ft-home');
const nn = await clientFor(d.units['namenode/0']!);
const dn = d.units['datanode/0']!;
const cpu = (pid: number) => { const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' '); return (Number(f[11]) + Number(f[12])) * 10; };
const rss = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
const res: string[] = []; const walls: number[] = []; const cpus: number[] = [];
for (let i = 0; i < N; i++) {
  const unit = `datanode/${60 + i}`; const dataDir = `/tmp/ft-x-${i}`; rmSync(dataDir, { recursive: true, force: true });
  const file = `/tmp/ft-x-${i}.yaml`;
  writeFileSync(file, JSON.stringify({ unit, dataDir, charmDir: dn.charmDir, charmModule: dn.charmModule, keyringFile: '/tmp/ft-home/hadoop/keyring', label: 'rhizome-hadoop', logLevel: 'warn', seeds: [d.units['namenode/0']!.gossipAddress] }));
  const cmd = agentCommand(file, ['--no-fsync']);
  const t = performance.now();
  const child = spawn(cmd.command, [...extraNodeArgs, ...cmd.args], { stdio: 'ignore' });
  for (;;) {
    const m = (await nn.json('GET', '/members')) as { name: string; status: string }[];
    if (m.some((x) => x.name === unit && x.status === 'alive')) break;
    if (performance.now() - t > 20000) throw new Error('timeout');
    await new Promise((r) => setTimeout(r, 10));
  }
  const w = performance.now() - t; const c = cpu(child.pid!);
  walls.push(w); cpus.push(c);
  let r = '';
  if (process.env.FT_RSS && i === N - 1) { await new Promise((r) => setTimeout(r, Number(process.env.FT_RSS))); r = ` rss ${rss(child.pid!).toFixed(1)}MB cpuAfter ${cpu(child.pid!)}ms`; }
  res.push(`${w.toFixed(0)}ms/${c}cpu${r}`);
  child.kill('SIGTERM'); await new Promise((r) => child.once('exit', r));
}
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
console.log(`start->member median ${med(walls)!.toFixed(0)} ms, cpu median ${med(cpus)} ms  [${res.join(' ')}]`);
process.exit(0);
