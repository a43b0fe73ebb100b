// Names the engine adds to a prepared module. The prefix is reserved: a
// program that uses it is refused.

export const ENGINE_MODULE = 'gate_engine';
export const RESERVED_PREFIX = `${ENGINE_MODULE}.`;

/**
 * Imported function (site key i32) -> i32 called when fuel runs out: it sets
 * a new budget and answers 1, or answers 0 when the calling frame is to be
 * rewound, or takes the stack down (docs/engine.md).
 */
export const TICK_IMPORT = 'tick';
/** Exported mutable i32 global: remaining fuel. */
export const FUEL_EXPORT = `${ENGINE_MODULE}.fuel`;
/** Exported former start function. */
export const START_EXPORT = `${ENGINE_MODULE}.start`;
/** Prefix of exported mutable program globals: "gate_engine.global.<index>". */
export const GLOBAL_EXPORT_PREFIX = `${ENGINE_MODULE}.global.`;
/** Imported program memory. */
export const MEMORY_IMPORT = 'memory';

// Functions of the stack module that a prepared program imports (docs/engine.md).

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

// What a snapshot reads besides memory and globals (docs/snapshot.md).

/** Prefix of exported program tables: "gate_engine.table.<index>". */
export const TABLE_EXPORT_PREFIX = `${ENGINE_MODULE}.table.`;
/**
 * Exported funcref table holding every function a table or a funcref value
 * can hold, in ProgramInfo.rewindTable's order: how a reference maps back to
 * its function index. (It is also the rewind table of calls through tables.)
 */
export const FUNCTIONS_EXPORT = `${ENGINE_MODULE}.functions`;
/** Prefixes of exported i32 globals set to 1 when the program drops a passive segment. */
export const DROPPED_DATA_PREFIX = `${ENGINE_MODULE}.dropped.data.`;
export const DROPPED_ELEM_PREFIX = `${ENGINE_MODULE}.dropped.elem.`;
/** Prefixes of exported functions that drop a passive segment (a restore drops what was dropped). */
export const DROP_DATA_PREFIX = `${ENGINE_MODULE}.drop.data.`;
export const DROP_ELEM_PREFIX = `${ENGINE_MODULE}.drop.elem.`;
