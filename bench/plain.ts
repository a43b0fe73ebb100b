// The plain V8 baseline of the execution figures: a Gate program's entry
// function run straight on V8, without any instrumentation. Nothing here
// needs Node, so the browser bench (bench/browser/) runs the same baseline
// in Chromium.

/**
 * Run an entry function of a Gate program directly on V8, without any
 * instrumentation: the baseline. Only the debug log works (fd_write to 2);
 * any other import call throws. Returns what the program wrote to its log.
 */
export function runPlain(module: WebAssembly.Module, entry: string): string {
  // The import functions need the memory, which exists only once the instance does.
  const bound: { memory?: WebAssembly.Memory } = {};
  let log = '';
  const unsupported = (name: string) => () => {
    throw new Error(`plain run: ${name} is not available`);
  };
  const env: Record<string, WebAssembly.ImportValue> = {};
  const wasi: Record<string, WebAssembly.ImportValue> = {};
  const fdWrite = (fd: number, iovs: number, count: number, written: number): number => {
    const memory = bound.memory!;
    const view = new DataView(memory.buffer);
    let total = 0;
    for (let i = 0; i < count; i++) {
      const ptr = view.getUint32(iovs + 8 * i, true);
      const len = view.getUint32(iovs + 8 * i + 4, true);
      if (fd === 2) log += bytesToText(new Uint8Array(memory.buffer, ptr, len));
      total += len;
    }
    view.setUint32(written, total, true);
    return 0;
  };
  for (const imp of WebAssembly.Module.imports(module)) {
    if (imp.kind !== 'function') throw new Error(`plain run: cannot provide ${imp.kind} import ${imp.module}.${imp.name}`);
    const target = imp.module === 'env' ? env : wasi;
    target[imp.name] = imp.name === 'fd_write' || imp.name === '__wasi_fd_write' ? fdWrite : unsupported(imp.name);
  }
  const instance = new WebAssembly.Instance(module, { env, wasi_snapshot_preview1: wasi });
  bound.memory = instance.exports.memory as WebAssembly.Memory;
  (instance.exports[entry] as () => unknown)();
  return log;
}

/** One character per byte (logs may hold binary results, which must compare exactly). */
function bytesToText(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return s;
}

/** A debug sink that keeps the log as text, one character per byte. */
export function textLog(): { sink: (chunk: Uint8Array) => void; text: () => string } {
  let text = '';
  return { sink: (chunk) => (text += bytesToText(chunk)), text: () => text };
}

