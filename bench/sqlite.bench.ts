// SQLite as a Gate program (guest/sqlite/sqlite.wasm, about 1 MiB of
// clang -O2 code): how fast a real program of that size is prepared and how
// much it grows, how fast its queries run against plain V8, and what a first
// `gate call --in-process` costs on an empty module cache against the same
// call with a warm cache (issue 12's targets).

import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { nodeEngine } from '../src/host/engine.ts';
import { ModuleCache } from '../src/host/module-cache.ts';
import type { CompiledModule } from '../src/runtime/instance/instance.ts';
import { prepareModule } from '../src/runtime/prepare/prepare.ts';
import { parseModule } from '../src/runtime/wasm/module.ts';
import { executionRows } from './execution.ts';
import { formatBytes, median, note, spread, target, timeCpu, type BenchOptions, type Row } from './lib.ts';
import { runPlain } from './plain.ts';
import { guest, root } from './programs.ts';

const GROUP = 'sqlite';
const PROGRAM = 'sqlite/sqlite.wasm';
const CODE_SECTION = 10;
const MB = 1e6;

/** Issue 12's targets. */
const PREPARE_MB_PER_S = 5;
const OUTPUT_RATIO = 1.5;
const QUERIES_RATIO = 1.3;
const COLD_CALL_RATIO = 2;

function codeSectionSize(bytes: Uint8Array): number {
  const code = parseModule(bytes).sections.find((s) => s.id === CODE_SECTION);
  return code ? code.end - code.start : 0;
}

/** Preparation time and throughput, in this process; returns the last prepared module, compiled. */
async function prepareRows(bytes: Uint8Array, samples: number): Promise<{ rows: Row[]; compiled: CompiledModule }> {
  const wall: number[] = [];
  const cpu: number[] = [];
  let prepared;
  for (let i = 0; i < samples; i++) {
    const t = await timeCpu(async () => (prepared = await prepareModule(bytes)));
    wall.push(t.wall);
    cpu.push(t.cpu);
  }
  const codeBytes = codeSectionSize(bytes);
  // Throughput by CPU time: the machine may be shared; the wall-time figure is in the note.
  const cpuS = median(cpu) / 1000;
  const wallS = median(wall) / 1000;
  const codeRate = codeBytes / MB / cpuS;
  const rows: Row[] = [
    {
      group: GROUP,
      name: `prepare sqlite.wasm (${formatBytes(bytes.byteLength)}, code section ${formatBytes(codeBytes)})`,
      value: median(wall),
      unit: 'ms',
      note: note(spread(wall), `CPU median ${median(cpu).toFixed(0)} ms`, `version ${prepared!.version}`),
    },
    {
      group: GROUP,
      name: 'prepare throughput, code section',
      value: codeRate,
      unit: 'MB/s',
      note: note(target(codeRate, '≥', PREPARE_MB_PER_S, 'MB/s'), `CPU time; wall ${(codeBytes / MB / wallS).toPrecision(3)} MB/s`, 'MB = 10⁶ bytes'),
    },
    {
      group: GROUP,
      name: 'prepare throughput, whole module',
      value: bytes.byteLength / MB / cpuS,
      unit: 'MB/s',
      note: `CPU time; wall ${(bytes.byteLength / MB / wallS).toPrecision(3)} MB/s`,
    },
  ];
  const compiled = { prepared: prepared!, module: await WebAssembly.compile(prepared!.bytes as Uint8Array<ArrayBuffer>), program: bytes };
  return { rows, compiled };
}

function sizeRow(bytes: Uint8Array, prepared: Uint8Array): Row {
  const ratio = prepared.byteLength / bytes.byteLength;
  return {
    group: GROUP,
    name: 'prepared output / input size',
    value: ratio,
    unit: 'x',
    note: note(target(ratio, '≤', OUTPUT_RATIO, 'x'), `${formatBytes(bytes.byteLength)} → ${formatBytes(prepared.byteLength)}`),
  };
}

interface CallResult {
  wall: number;
  /** CPU time of the gate process (all its threads), reported by the process itself as it exits. */
  cpu: number;
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Preloaded into the gate process: writes its CPU milliseconds to descriptor 3 when it exits. */
const REPORT_CPU =
  "import{writeSync}from'node:fs';process.on('exit',()=>{const u=process.cpuUsage();writeSync(3,String((u.user+u.system)/1000))})";

/** `gate call --in-process PROGRAM entry` as a user runs it: a new process, timed from spawn to exit. */
function gateCall(env: NodeJS.ProcessEnv, entry: string): Promise<CallResult> {
  const args = [
    '--import',
    `data:text/javascript,${encodeURIComponent(REPORT_CPU)}`,
    path.join(root, 'bin', 'gate.js'),
    'call',
    '--in-process',
    path.join(root, 'guest', PROGRAM),
    entry,
  ];
  const t0 = performance.now();
  const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe', 'pipe'] });
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  let cpu = '';
  child.stdio[1]!.on('data', (c: Buffer) => stdout.push(c));
  child.stdio[2]!.on('data', (c: Buffer) => stderr.push(c));
  child.stdio[3]!.on('data', (c: Buffer) => (cpu += c.toString()));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) =>
      resolve({
        wall: performance.now() - t0,
        cpu: Number(cpu),
        code,
        stdout: Buffer.concat(stdout).toString(),
        stderr: Buffer.concat(stderr).toString(),
      }),
    );
  });
}

interface Home {
  env: NodeJS.ProcessEnv;
  cacheDir: string;
  cleanup(): Promise<void>;
}

/** A private home (config, state) and module cache directory, so that nothing of the user's is read or written. */
async function privateHome(): Promise<Home> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'gate-bench-sqlite-'));
  const cacheDir = path.join(dir, 'modules');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: dir,
    XDG_CONFIG_HOME: path.join(dir, 'config'),
    XDG_STATE_HOME: path.join(dir, 'state'),
    XDG_CACHE_HOME: path.join(dir, 'cache'),
    XDG_RUNTIME_DIR: path.join(dir, 'run'),
    GATE_CACHE_DIR: cacheDir,
    NO_COLOR: '1',
  };
  return { env, cacheDir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/**
 * Empty module cache against warm: every empty-cache sample gets a fresh
 * home, the warm ones use the last. Returns that home, its cache filled
 * (the caller cleans it up).
 */
async function callRows(expected: string, coldSamples: number, warmSamples: number, progress: (m: string) => void): Promise<{ rows: Row[]; home: Home }> {
  const cold: CallResult[] = [];
  const warm: CallResult[] = [];
  const call = async (home: Home, what: string): Promise<CallResult> => {
    const r = await gateCall(home.env, 'queries');
    if (r.code !== 0 || r.stdout !== expected) {
      throw new Error(`gate call (${what}): exit ${r.code}, stdout ${JSON.stringify(r.stdout)}, stderr ${JSON.stringify(r.stderr.slice(-500))}`);
    }
    return r;
  };
  let home = await privateHome();
  try {
    for (let i = 0; i < coldSamples; i++) {
      if (i > 0) {
        await home.cleanup();
        home = await privateHome();
      }
      progress(`gate call --in-process, empty cache (${i + 1}/${coldSamples})`);
      cold.push(await call(home, 'empty cache'));
    }
    for (let i = 0; i < warmSamples; i++) {
      progress(`gate call --in-process, warm cache (${i + 1}/${warmSamples})`);
      warm.push(await call(home, 'warm cache'));
    }
  } catch (error) {
    await home.cleanup();
    throw error;
  }
  const wall = (rs: CallResult[]) => rs.map((r) => r.wall);
  const cpu = (rs: CallResult[]) => median(rs.map((r) => r.cpu));
  const ratio = median(wall(cold)) / median(wall(warm));
  const what = (rs: CallResult[]) => note(spread(wall(rs)), `CPU median ${cpu(rs).toFixed(0)} ms`, 'wall time from spawn to exit, output checked');
  const rows: Row[] = [
    { group: GROUP, name: 'gate call --in-process queries, empty cache', value: median(wall(cold)), unit: 'ms', note: what(cold) },
    { group: GROUP, name: 'gate call --in-process queries, warm cache', value: median(wall(warm)), unit: 'ms', note: what(warm) },
    {
      group: GROUP,
      name: 'gate call: empty cache / warm cache',
      value: ratio,
      unit: 'x',
      note: note(target(ratio, '≤', COLD_CALL_RATIO, 'x'), 'wall time', `CPU time ${(cpu(cold) / cpu(warm)).toFixed(2)}x`, 'private HOME and GATE_CACHE_DIR'),
    },
  ];
  return { rows, home };
}

/** What queries_debug logs straight on V8: the line every other run must give (the queries entry sends it to the client). */
async function plainLog(bytes: Uint8Array): Promise<string> {
  return runPlain(await WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>), 'queries_debug');
}

export async function run({ quick, progress }: BenchOptions): Promise<Row[]> {
  const bytes = guest(PROGRAM);
  const expected = await plainLog(bytes);
  const rows: Row[] = [];

  let compiled: CompiledModule | undefined;
  {
    const samples = quick ? 1 : 5;
    progress(`preparing sqlite.wasm, ${samples} sample(s)`);
    const prepared = await prepareRows(bytes, samples);
    rows.push(...prepared.rows);
    compiled = prepared.compiled;
  }

  const calls = await callRows(expected, quick ? 1 : 3, quick ? 1 : 3, progress);
  try {
    // The execution figures use a module already prepared: the one above, or the one the calls left on disk.
    const cache = new ModuleCache(compiled ? null : calls.home.cacheDir);
    if (compiled) cache.seed(compiled);
    else compiled = await cache.get(bytes);
    rows.push(sizeRow(bytes, compiled.prepared.bytes));

    const rounds = quick ? 1 : 5;
    progress(`queries: plain V8 and instrumented, ${rounds} rounds each`);
    const subject = { name: 'queries (50,000 items)', bytes, entry: 'queries_debug', target: QUERIES_RATIO };
    rows.push(...(await executionRows(GROUP, nodeEngine(), cache, subject, rounds)).rows);
  } finally {
    await calls.home.cleanup();
  }
  rows.push(...calls.rows);
  return rows;
}
