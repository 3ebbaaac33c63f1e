/**
 * Hadoop's `*-site.xml` format: a `<configuration>` of `<property>` entries
 * with a `<name>` and a `<value>`. Rendering is deterministic (properties in
 * the order given) so that "write only when content changes" works, and
 * parsing is strict enough for tests to read back what the charms wrote.
 */

export type HadoopProperties = ReadonlyArray<readonly [name: string, value: string | number | boolean]>;

function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function unescapeXml(s: string): string {
  return s.replace(/&quot;/g, '"').replace(/&gt;/g, '>').replace(/&lt;/g, '<').replace(/&amp;/g, '&');
}

/**
 * Renders a Hadoop configuration file.
 *
 * @example
 * renderHadoopXml([['fs.defaultFS', 'hdfs://10.0.0.1:8020']], 'core-site.xml for cluster demo')
 */
export function renderHadoopXml(properties: HadoopProperties, comment?: string): string {
  const lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<?xml-stylesheet type="text/xsl" href="configuration.xsl"?>'];
  if (comment !== undefined) lines.push(`<!-- ${comment.replace(/--/g, '- -')} -->`);
  lines.push('<configuration>');
  for (const [name, value] of properties) {
    lines.push('  <property>', `    <name>${escapeXml(name)}</name>`, `    <value>${escapeXml(String(value))}</value>`, '  </property>');
  }
  lines.push('</configuration>', '');
  return lines.join('\n');
}

/** Reads the properties of a Hadoop configuration file; throws on anything that is not one. */
export function parseHadoopXml(xml: string): Record<string, string> {
  if (!/<configuration>[\s\S]*<\/configuration>/.test(xml)) {
    throw new Error('not a Hadoop configuration file: no <configuration> element');
  }
  const out: Record<string, string> = {};
  const re = /<property>\s*<name>([^<]*)<\/name>\s*<value>([^<]*)<\/value>\s*<\/property>/g;
  for (const m of xml.matchAll(re)) out[unescapeXml(m[1]!)] = unescapeXml(m[2]!);
  return out;
}
