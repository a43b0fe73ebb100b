// Binaryen's command-line tools (wasm-opt, wasm-reduce) from the npm
// `binaryen` package. They are Emscripten builds that cost ~0.3 s to start;
// wasm-opt is run in this process instead, so that generating a module costs
// milliseconds. That relies on the shape of Emscripten's launcher, so when it
// cannot be loaded that way the tool is run as a child process.

import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const here = path.dirname(fileURLToPath(import.meta.url));
export const binDir = path.resolve(here, '../../node_modules/binaryen/bin');

export class ToolError extends Error {
  readonly code = 'ERR_FUZZ_TOOL';
  constructor(message: string) {
    super(message);
    this.name = 'ToolError';
  }
}

interface EmscriptenModule {
  callMain?: (args: string[]) => number;
  onRuntimeInitialized?: () => void;
  [key: string]: unknown;
}

const RUN_MAIN = 'var noInitialRun=Module["noInitialRun"]||false;if(!noInitialRun)callMain(args)';

let inProcess: Promise<EmscriptenModule | null> | undefined;
let calls = 0;
/**
 * wasm-opt's main is meant to run once per process: after about a thousand
 * runs in one runtime it crashed. A fresh runtime every so often avoids that.
 */
const CALLS_PER_RUNTIME = 250;

/** Load wasm-opt's Emscripten module with its main callable; null when its launcher has another shape. */
function loadInProcess(): Promise<EmscriptenModule | null> {
  inProcess ??= (async () => {
    const file = path.join(binDir, 'wasm-opt');
    let source = readFileSync(file, 'utf8');
    if (!source.includes(RUN_MAIN)) return null;
    if (source.startsWith('#!')) source = '//' + source.slice(2);
    source = source.replace(RUN_MAIN, 'Module.callMain=callMain;');
    // Its chatter ("no passes specified") is dropped.
    const module: EmscriptenModule = {
      noExitRuntime: true,
      print: () => {},
      printErr: () => {},
    };
    const ready = new Promise<void>((resolve) => (module.onRuntimeInitialized = resolve));
    // The launcher is CommonJS and declares `var Module`; passing it in as a
    // parameter makes that declaration pick up our settings.
    const launcher = new Function('Module', 'require', 'module', '__filename', '__dirname', 'process', source);
    const keepAlive = setInterval(() => {}, 1000);
    try {
      launcher(module, createRequire(file), { exports: {} }, file, binDir, process);
      await ready;
    } finally {
      clearInterval(keepAlive);
    }
    return typeof module.callMain === 'function' ? module : null;
  })().catch(() => null);
  return inProcess;
}

/** Run wasm-opt with these arguments; throws ToolError when it fails. */
export async function wasmOpt(args: string[]): Promise<void> {
  if (++calls % CALLS_PER_RUNTIME === 0) inProcess = undefined;
  const module = await loadInProcess();
  if (module) {
    const exitCode = process.exitCode;
    let status = 0;
    let aborted = false;
    try {
      status = module.callMain!([...args]); // it prepends argv[0] to the array it gets
    } catch (error) {
      const e = error as { name?: string; status?: number };
      if (e?.name === 'ExitStatus') status = e.status ?? 1;
      else aborted = true;
    } finally {
      process.exitCode = exitCode; // Emscripten's exit sets it
    }
    if (!aborted) {
      if (status !== 0) throw new ToolError(`wasm-opt ${args.join(' ')} exited with ${status}`);
      return;
    }
    // A crash inside wasm-opt leaves its runtime unusable: load a fresh one
    // next time, and run this one in a child process.
    inProcess = undefined;
  }
  try {
    await promisify(execFile)(process.execPath, [path.join(binDir, 'wasm-opt'), ...args], { timeout: 60_000 });
  } catch (error) {
    throw new ToolError(`wasm-opt ${args.join(' ')}: ${(error as Error).message.split('\n')[0]}`);
  }
}
