/**
 * The format of a unit's agent.yaml, both halves: deploy writes JSON (which
 * is YAML, so an operator may edit the file as either) under a comment
 * line, and the agent reads that with JSON.parse. A file written by hand in
 * YAML's other forms goes to the YAML parser, loaded only then: importing
 * it kept ~1 MB resident in every agent for one parse at start. Apart from
 * config.ts so that deploy's side loads neither zod nor YAML.
 */

/** Whole-line comments and blank lines before the document. */
const LEADING_COMMENTS = /^(?:[ \t]*(?:#[^\n]*)?\r?\n)*/;

/** What deploy writes to agent.yaml, after its comment line. */
export function agentConfigText(config: Readonly<Record<string, unknown>>): string {
  return `${JSON.stringify(config, null, 2)}\n`;
}

/** A config file's value (YAML or JSON); throws the parser's error. */
export async function parseAgentConfigText(text: string): Promise<unknown> {
  const body = text.replace(LEADING_COMMENTS, '');
  if (body.startsWith('{')) {
    try {
      return JSON.parse(body);
    } catch {
      // A YAML flow mapping, or comments inside the document: not JSON, the YAML parser decides.
    }
  }
  return (await import('yaml')).parse(text);
}
