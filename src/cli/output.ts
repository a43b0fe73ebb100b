// Printing for people and scripts: aligned columns (a header and colours
// only on a terminal, so `cut -d" " -f1` keeps working in pipes and the
// completion script), JSON for --json, status colours, and a program's
// output as it streams in.

import type { IncomingMessage } from 'node:http';
import { CliError } from './errors.ts';

function useColour(stream: NodeJS.WriteStream): boolean {
  if (process.env.NO_COLOR !== undefined && process.env.NO_COLOR !== '') return false;
  if (process.env.FORCE_COLOR !== undefined && process.env.FORCE_COLOR !== '0') return true;
  return stream.isTTY === true;
}

const CODES = { bold: '1', dim: '2', red: '31', green: '32', yellow: '33', blue: '34', cyan: '36' } as const;
export type Style = keyof typeof CODES;

export function paint(text: string, style: Style, stream: NodeJS.WriteStream = process.stdout): string {
  return useColour(stream) ? `\x1b[${CODES[style]}m${text}\x1b[0m` : text;
}

/** Colour of a status word: running green, suspended yellow, killed or abnormal red. */
export function statusStyle(text: string): Style {
  if (text.includes('abnormally') || text.startsWith('KILLED') || text.startsWith('error')) return 'red';
  if (text.startsWith('RUNNING')) return 'green';
  if (text.startsWith('SUSPENDED')) return 'yellow';
  return 'dim';
}

export interface Column {
  title: string;
  style?: (value: string) => Style | undefined;
}

/** Columns padded to the widest cell; the last column is not padded. */
export function formatTable(columns: readonly Column[], rows: readonly string[][], stream: NodeJS.WriteStream = process.stdout): string {
  const header = stream.isTTY === true;
  const widths = columns.map((c, i) => Math.max(header ? c.title.length : 0, ...rows.map((r) => r[i].length)));
  const line = (cells: string[], styler: (cell: string, i: number) => string) =>
    cells
      .map((cell, i) => {
        const padded = i === cells.length - 1 ? cell : cell.padEnd(widths[i]);
        return styler(padded, i);
      })
      .join('  ')
      .trimEnd();
  const out: string[] = [];
  if (header) out.push(line(columns.map((c) => c.title), (cell) => paint(cell, 'bold', stream)));
  for (const row of rows) {
    out.push(
      line(row, (cell, i) => {
        const style = columns[i].style?.(row[i]);
        return style ? paint(cell, style, stream) : cell;
      }),
    );
  }
  return out.length > 0 ? `${out.join('\n')}\n` : '';
}

export function printJSON(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Tags like Gate prints them: [a b c]. */
export function tagsText(tags: readonly string[] | undefined): string {
  return `[${(tags ?? []).join(' ')}]`;
}

/** Program output to stdout, as it comes; a dropped connection is an error that names the server. */
export async function copyOutput(res: IncomingMessage, name: string): Promise<void> {
  try {
    for await (const chunk of res) {
      if (!process.stdout.write(chunk as Buffer)) await new Promise((resolve) => process.stdout.once('drain', resolve));
    }
  } catch {
    throw new CliError(`${name} closed the connection before the program's output ended`);
  }
}
