// The host module the spec scripts import as "spectest" (see the suite's
// README): print functions that do nothing, four constant globals, a table
// and a memory. One per run of a script, so no state leaks between scripts.

export function spectest(): WebAssembly.ModuleImports {
  const print = (): void => {};
  return {
    print,
    print_i32: print,
    print_i64: print,
    print_f32: print,
    print_f64: print,
    print_i32_f32: print,
    print_f64_f64: print,
    global_i32: new WebAssembly.Global({ value: 'i32', mutable: false }, 666),
    global_i64: new WebAssembly.Global({ value: 'i64', mutable: false }, 666n),
    global_f32: new WebAssembly.Global({ value: 'f32', mutable: false }, 666.6),
    global_f64: new WebAssembly.Global({ value: 'f64', mutable: false }, 666.6),
    table: new WebAssembly.Table({ initial: 10, maximum: 20, element: 'anyfunc' }),
    memory: new WebAssembly.Memory({ initial: 1, maximum: 2 }),
  };
}
