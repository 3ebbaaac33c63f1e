/**
 * Runs the `rhizome` CLI in this process against a home directory, capturing
 * what it writes. Shared by the operator-command tests.
 */
import { vi } from 'vitest';
import { runCli } from '../../src/cli';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function rhizomeIn(home: string, ...args: string[]): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stdout += String(chunk);
    return true;
  });
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  });
  try {
    const code = await runCli(['--home', home, ...args]);
    return { code, stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

/** Like rhizomeIn, but throws (with the output) unless the command exits 0. */
export async function okIn(home: string, ...args: string[]): Promise<string> {
  const r = await rhizomeIn(home, ...args);
  if (r.code !== 0) throw new Error(`rhizome ${args.join(' ')} exited ${r.code}:\n${r.stderr}\n${r.stdout}`);
  return r.stdout;
}

