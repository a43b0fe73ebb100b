// Benchmark runner: `npm run bench [-- [--quick] [--json FILE] [NAME...]]`.
//
// Runs every bench module bench/NAME.bench.ts (or those whose NAME contains
// one of the given NAMEs) in name order, in this process, one after the
// other, and prints one aligned table of what they measured. See README.md
// for the module contract.

import { readdirSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { formatValue, machineFacts, type BenchModule, type Row } from './lib.ts';

const benchDir = path.dirname(fileURLToPath(import.meta.url));
const SUFFIX = '.bench.ts';

const usage = `usage: npm run bench -- [options] [NAME...]

Runs bench/NAME${SUFFIX} modules (all, or those whose name contains a NAME).

environment:

options:
  --json FILE   also write the machine facts and rows as JSON to FILE
  --quick       fewer samples (a smoke run, not a measurement)
  --list        list the bench modules and exit
  -h, --help    this text`;

function discover(): string[] {
  return readdirSync(benchDir)
    .filter((f) => f.endsWith(SUFFIX))
    .map((f) => f.slice(0, -SUFFIX.length))
    .sort();
}

function table(rows: readonly Row[]): string {
  const cells = rows.map((r) => [r.group, r.name, formatValue(r.value), r.unit, r.note ?? '']);
  const widths = [0, 1, 2, 3].map((i) => Math.max(0, ...cells.map((c) => c[i].length)));
  return cells
    .map((c) =>
      [c[0].padEnd(widths[0]), c[1].padEnd(widths[1]), c[2].padStart(widths[2]), c[3].padEnd(widths[3]), c[4]]
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

async function main(): Promise<number> {
  let args;
  try {
    args = parseArgs({
      allowPositionals: true,
      options: {
        json: { type: 'string' },
        quick: { type: 'boolean', default: false },
        list: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (error) {
    console.error(`bench: ${(error as Error).message}\n\n${usage}`);
    return 2;
  }
  const { values, positionals } = args;
  if (values.help) {
    console.log(usage);
    return 0;
  }
  const all = discover();
  if (values.list) {
    console.log(all.join('\n'));
    return 0;
  }
  const selected = positionals.length === 0 ? all : all.filter((name) => positionals.some((p) => name.includes(p)));
  if (selected.length === 0) {
    console.error(`bench: no bench module matches ${positionals.join(', ')} (have: ${all.join(', ') || 'none'})`);
    return 2;
  }

  const machine = machineFacts();
  const date = new Date().toISOString();
  console.log(`date     ${date}`);
  console.log(`node     ${machine.node} (V8 ${machine.v8}), ${machine.platform}`);
  console.log(`cpu      ${machine.cpu}, ${machine.cores} cores, ${machine.memory}, load average ${machine.loadavg}`);
  if (values.quick) console.log('mode     --quick: few samples, figures are rough');
  console.log();

  const rows: Row[] = [];
  let failed = false;
  for (const name of selected) {
    const progress = (message: string): void => {
      process.stderr.write(`[${name}] ${message}\n`);
    };
    const started = performance.now();
    try {
      const mod = (await import(pathToFileURL(path.join(benchDir, name + SUFFIX)).href)) as Partial<BenchModule>;
      if (typeof mod.run !== 'function') throw new Error(`${name}${SUFFIX} does not export run()`);
      const produced = await mod.run({ quick: values.quick, progress });
      rows.push(...produced);
      progress(`done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    } catch (error) {
      // One broken module should not hide the others' figures.
      failed = true;
      progress(`FAILED: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    }
  }

  console.log(table(rows));
  // The runs take minutes: how busy the machine was by the end matters as much as at the start.
  console.log(`\nload average at the end ${machineFacts().loadavg}`);
  if (values.json) {
    await mkdir(path.dirname(path.resolve(values.json)), { recursive: true });
    await writeFile(values.json, JSON.stringify({ date, machine, quick: values.quick, rows }, null, 2) + '\n');
    process.stderr.write(`bench: wrote ${values.json}\n`);
  }
  return failed ? 1 : 0;
}

process.exitCode = await main();
