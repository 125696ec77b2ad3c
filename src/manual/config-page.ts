import { bold, italic, roffText, titleLine } from './roff.js';

// The part of JSON Schema the config schema uses.
export interface SchemaNode {
  readonly type?: string;
  readonly description?: string;
  readonly enum?: readonly string[];
  readonly anyOf?: readonly SchemaNode[];
  readonly properties?: Readonly<Record<string, SchemaNode>>;
  readonly additionalProperties?: boolean | SchemaNode;
  readonly required?: readonly string[];
}

// The schema and defaults validation uses, so the page cannot describe another config.
export interface ConfigPageInput {
  version: string;
  configPath: string;
  schema: SchemaNode;
  defaults: Readonly<Record<string, string | number | boolean>>;
  // config.sample.json, shown as the example.
  sample: string;
}

// Pure: xo-immutable-backups.json(5), one entry per key of the config schema validation uses.
export function renderConfigPage(input: ConfigPageInput): string {
  const remote = input.schema.properties?.remotes?.additionalProperties;
  if (remote === undefined || typeof remote === 'boolean') throw new Error('the schema has no remote object');
  return [
    titleLine('xo-immutable-backups.json', 5, roffText(`xo-immutable-backups ${input.version}`), 'File Formats'),
    // No hyphenation, ragged right: command names, options and paths stay whole.
    '.nh',
    '.ad l',
    '.SH NAME',
    `${roffText('xo-immutable-backups.json')} \\- ${roffText('configuration of xo-immutable-backups')}`,
    '.SH SYNOPSIS',
    italic(input.configPath),
    '.SH DESCRIPTION',
    roffText(
      'One JSON object, read by every command (--config FILE reads another) and never written. Unknown keys are ' +
        'refused, and every problem is named with its key at once; xo-immutable-backups check validates the file ' +
        'without changing anything. The daemon reads it at start: restart it after a change.',
    ),
    '.PP',
    roffText('A duration is a string: a number and a unit, such as "30s", "15m", "1h" or "7d".'),
    '.SH KEYS',
    ...keyLines(input.schema, input.defaults),
    '.SH REMOTE KEYS',
    roffText("Each entry of remotes, under an id of your choice (named by --remote ID and the metrics' remote label):"),
    ...keyLines(remote, input.defaults),
    '.SH EXAMPLE',
    roffText('config.sample.json, in the package:'),
    '.PP',
    '.RS',
    '.nf',
    roffText(input.sample.trimEnd()),
    '.fi',
    '.RE',
    '.SH SEE ALSO',
    `${bold('xo-immutable-backups')}(8)`,
    '',
  ].join('\n');
}

function keyLines(node: SchemaNode, defaults: ConfigPageInput['defaults']): string[] {
  return Object.entries(node.properties ?? {}).flatMap(([key, property]) => {
    const facts = [
      typeOf(property),
      ...((node.required ?? []).includes(key) ? ['required'] : []),
      ...(key in defaults ? [`default ${JSON.stringify(defaults[key])}`] : []),
    ];
    const values = property.enum === undefined ? [] : [`One of: ${property.enum.join(', ')}.`];
    const text = [property.description ?? '', ...values].filter((t) => t !== '').join(' ');
    return ['.TP', `${bold(key)} (${roffText(facts.join('; '))})`, roffText(text)];
  });
}

function typeOf(node: SchemaNode): string {
  if (node.anyOf !== undefined) return node.anyOf.map(typeOf).join(' or ');
  return node.type ?? 'any';
}
