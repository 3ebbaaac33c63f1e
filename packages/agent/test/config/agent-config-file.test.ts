import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { agentConfigText, parseAgentConfigText } from '../../src/agent-config-file';
import { loadAgentConfig } from '../../src/config';

const config = { unit: 'web/0', charmDir: '/c', dataDir: '/d', seeds: ['10.0.0.5:7946'], options: { port: 8080, greeting: 'hi: there # not a comment' } };

describe('agent.yaml format', () => {
  it('reads what deploy writes, comment line included, as the YAML parser would', async () => {
    const text = `# written by rhizome deploy for web/0\n${agentConfigText(config)}`;
    expect(await parseAgentConfigText(text)).toEqual(config);
    const yaml = await import('yaml');
    expect(yaml.parse(text)).toEqual(config);
  });

  it('reads YAML written by hand, flow mappings and inner comments included', async () => {
    expect(await parseAgentConfigText('# mine\nunit: web/0\noptions: { port: 8080 }\n')).toEqual({ unit: 'web/0', options: { port: 8080 } });
    expect(await parseAgentConfigText('{ unit: web/0, seeds: [a:1] }')).toEqual({ unit: 'web/0', seeds: ['a:1'] });
    expect(await parseAgentConfigText('{\n  "unit": "web/0" # the unit\n}\n')).toEqual({ unit: 'web/0' });
  });

  it('refuses a broken file with the parser message, naming the file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rz-agent-config-file-'));
    try {
      const file = join(dir, 'agent.yaml');
      await writeFile(file, '# written by rhizome deploy\n{ "unit": "web/0",\n  unit: [\n');
      await expect(loadAgentConfig(file)).rejects.toMatchObject({ code: 'AGENT_ERR_BAD_CONFIG', message: expect.stringContaining(`${file} is not valid YAML/JSON`) });
      await writeFile(file, `# written by rhizome deploy\n${agentConfigText({ ...config, charmDir: 'charm' })}`);
      expect((await loadAgentConfig(file)).charmDir).toBe(join(dir, 'charm'));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
