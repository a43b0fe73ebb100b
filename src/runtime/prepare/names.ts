// Names the engine adds to a prepared module. The prefix is reserved: a
// program that uses it is refused.

export const ENGINE_MODULE = 'gate_engine';
export const RESERVED_PREFIX = `${ENGINE_MODULE}.`;

/** Imported function () -> i32 called when fuel runs out; returns the new budget. */
export const TICK_IMPORT = 'tick';
/** Exported mutable i32 global: remaining fuel. */
export const FUEL_EXPORT = `${ENGINE_MODULE}.fuel`;
/** Exported mutable i32 global, when the program has functions Asyncify cannot unwind: how many are on the stack. */
export const NO_UNWIND_EXPORT = `${ENGINE_MODULE}.nounwind`;
/** Exported former start function. */
export const START_EXPORT = `${ENGINE_MODULE}.start`;
/** Prefix of exported mutable program globals: "gate_engine.global.<index>". */
export const GLOBAL_EXPORT_PREFIX = `${ENGINE_MODULE}.global.`;
/** Imported program memory (memory 0) and Asyncify memory (memory 1). */
export const MEMORY_IMPORT = 'memory';
export const ASYNCIFY_MEMORY_IMPORT = 'asyncify_memory';

// Engine v2 (the portable-stack rewrite, docs/engine.md): functions of the
// stack module and the host that a prepared program imports.

/** (key i32, function i32) -> (): name the frame being saved (fills the header its callee left). */
export const FRAME_IMPORT = 'frame';
/** () -> (): end the frame being saved: leave the header slot of the caller's frame. */
export const MARK_IMPORT = 'mark';
/** () -> i32: begin rewinding the next frame; returns its site key. */
export const BEGIN_IMPORT = 'begin';
/** () -> i32: the rewind-table slot of the function the frame being rewound calls through a table. */
export const CALLEE_IMPORT = 'callee';
/** Prefixes of the save (value -> ()) and load (() -> value) functions, followed by the type name. */
export const SAVE_PREFIX = 'save_';
export const LOAD_PREFIX = 'load_';
/** The exception tag that unwinds a suspended program's stack. */
export const UNWIND_TAG_IMPORT = 'unwind';
