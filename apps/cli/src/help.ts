/**
 * Help text, rendered from the command table alone (no command module is loaded to show help).
 * @module
 */
import { COMMANDS, GLOBAL_OPTIONS, isGroup, type CommandSpec, type GroupSpec, type OptionSpecs } from './command-specs/table.js';
import type { Styles } from './output.js';

function optionLines(options: OptionSpecs): string[] {
  const rows = Object.entries(options).map(([name, spec]) => {
    const flag = `${spec.short === undefined ? '    ' : `-${spec.short}, `}--${name}`;
    const left = spec.type === 'string' ? `${flag} ${spec.valueName ?? 'VALUE'}` : flag;
    return [left, spec.description] as const;
  });
  const width = Math.max(0, ...rows.map(([left]) => left.length));
  return rows.map(([left, text]) => `  ${left.padEnd(width)}  ${text}`);
}

function wrap(text: string, width = 100): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line.length > 0 && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line.length === 0 ? word : `${line} ${word}`;
    }
  }
  if (line.length > 0) lines.push(line);
  return lines.join('\n');
}

/** Help for the whole CLI. */
export function globalHelp(s: Styles): string {
  const rows: [string, string][] = [];
  for (const spec of Object.values(COMMANDS)) {
    if (isGroup(spec)) {
      for (const sub of Object.values(spec.subcommands)) rows.push([sub.name, sub.summary]);
    } else {
      rows.push([spec.name, spec.summary]);
    }
  }
  const width = Math.max(...rows.map(([n]) => n.length));
  return [
    `${s.bold('keyfold')} - envelope encryption for operators`,
    '',
    `${s.bold('Usage:')} keyfold <command> [options]`,
    '',
    s.bold('Commands:'),
    ...rows.map(([n, summary]) => `  ${n.padEnd(width)}  ${summary}`),
    '',
    s.bold('Global options:'),
    ...optionLines(GLOBAL_OPTIONS),
    '',
    s.bold('Exit codes:'),
    '  0 ok, 1 failure, 2 usage error, 3 integrity or authentication failure (tampered data, wrong context,',
    '  wrong passphrase, credentials or PIN refused, another provider, damaged store or audit log, shredded key),',
    '  130 interrupted',
    '',
    s.bold('Environment:'),
    '  KEYFOLD_DIR            configuration directory (like --dir)',
    '  KEYFOLD_PASSPHRASE     passphrase of the KEK file (else a hidden prompt on a terminal)',
    '  KEYFOLD_SECURITY_MODE  production (default) or development',
    '  NO_COLOR               disable colour',
    '  Key services read their credentials on every run, never from the configuration: AWS_* (SDK default chain),',
    '  VAULT_TOKEN or KEYFOLD_VAULT_ROLE_ID + KEYFOLD_VAULT_SECRET_ID, Google Application Default Credentials,',
    '  DefaultAzureCredential (AZURE_*); PKCS#11 PINs from the variable or file named at init.',
    '',
    "Run 'keyfold help <command>' or 'keyfold <command> --help' for details.",
  ].join('\n');
}

/** Help for one command. */
export function commandHelp(spec: CommandSpec, s: Styles): string {
  const parts = [`${s.bold(`keyfold ${spec.name}`)} - ${spec.summary}`, '', `${s.bold('Usage:')} ${spec.usage}`];
  for (const paragraph of spec.description ?? []) parts.push('', wrap(paragraph));
  if (Object.keys(spec.options).length > 0) parts.push('', s.bold('Options:'), ...optionLines(spec.options));
  parts.push('', s.bold('Global options:'), ...optionLines(GLOBAL_OPTIONS));
  if (spec.examples !== undefined && spec.examples.length > 0) {
    parts.push('', s.bold('Examples:'), ...spec.examples.map((e) => `  ${e}`));
  }
  return parts.join('\n');
}

/** Help for a command group (`keyfold provider`). */
export function groupHelp(group: GroupSpec, s: Styles): string {
  const subs = Object.values(group.subcommands);
  const width = Math.max(...subs.map((c) => c.name.length));
  return [
    `${s.bold(`keyfold ${group.name}`)} - ${group.summary}`,
    '',
    `${s.bold('Usage:')} keyfold ${group.name} <subcommand> [options]`,
    '',
    s.bold('Subcommands:'),
    ...subs.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
  ].join('\n');
}
