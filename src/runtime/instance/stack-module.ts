// The stack module: a tiny WebAssembly module, one instance per engine,
// into which an unwinding program writes its frames and from which a
// rewinding program reads them back (docs/engine.md). Programs import its
// functions, so saving and loading a value is a wasm-to-wasm call that
// takes any value type (v128 and references included, which JavaScript
// cannot carry). Only the running instance uses it; the host copies a saved
// stack out after an unwind and back before a rewind.
//
// Layout of a saved stack (8-byte words, innermost frame first): each frame
// is a two-word header, [site key | frame size in bytes << 32] and
// [function index], then its operand values (top first) and its locals
// (last first); a callee writes its parameters right after its caller's
// header, which it leaves as a placeholder (`mark`) for the caller to name
// (`frame`). The last frame is the entry routine's (function 0xFFFFFFFF).
// A rewind reads frames outermost first (`begin`), each frame's values from
// its end backwards (`load_*`): locals first, then operands bottom to top.

import { Writer } from '../wasm/binary.ts';

const I32 = 0x7f;
const I64 = 0x7e;
const F32 = 0x7d;
const F64 = 0x7c;
const V128 = 0x7b;
const FUNCREF = 0x70;
const EXTERNREF = 0x6f;

/** Largest saved stack, in 64 KiB pages: a deeper stack ends the run as CALL_STACK_EXHAUSTED. */
export const STACK_MODULE_MAX_PAGES = 1024;

// Globals.
const G_SP = 0; // write position
const G_PH = 1; // position of the open header (placeholder), -1 for none
const G_FI = 2; // next frame to rewind
const G_FRAMES = 3; // frames to rewind
const G_LIST = 4; // offset of the frame list (u32 frame offsets, outermost first)
const G_RD = 5; // read position (backwards)
const G_NF = 6; // funcref slots used
const G_NE = 7; // externref slots used

export interface StackModuleExports {
  memory: WebAssembly.Memory;
  funcs: WebAssembly.Table;
  externs: WebAssembly.Table;
  sp: WebAssembly.Global;
  ph: WebAssembly.Global;
  fi: WebAssembly.Global;
  frames: WebAssembly.Global;
  list: WebAssembly.Global;
  rd: WebAssembly.Global;
  nf: WebAssembly.Global;
  ne: WebAssembly.Global;
  frame: (key: number, func: number) => void;
  mark: () => void;
  begin: () => number;
  save_i32: (v: number) => void;
  save_i64: (v: bigint) => void;
  save_f32: (v: number) => void;
  save_f64: (v: number) => void;
  save_funcref: (v: unknown) => void;
  save_externref: (v: unknown) => void;
  [name: string]: unknown;
}

let compiled: WebAssembly.Module | undefined;

/** A new stack module instance. */
export function instantiateStackModule(): StackModuleExports {
  compiled ??= new WebAssembly.Module(stackModuleBytes());
  return new WebAssembly.Instance(compiled, {}).exports as unknown as StackModuleExports;
}

type Body = (w: Writer) => void;

interface Fn {
  name: string;
  params: number[];
  results: number[];
  locals: number[];
  body: Body;
}

function stackModuleBytes(): Uint8Array<ArrayBuffer> {
  const fns: Fn[] = [];
  const ENSURE = 0;
  const gget = (w: Writer, g: number): void => {
    w.u8(0x23);
    w.u32(g);
  };
  const gset = (w: Writer, g: number): void => {
    w.u8(0x24);
    w.u32(g);
  };
  const i32c = (w: Writer, v: number): void => {
    w.u8(0x41);
    w.s32(v);
  };
  const lget = (w: Writer, l: number): void => {
    w.u8(0x20);
    w.u32(l);
  };
  const lset = (w: Writer, l: number): void => {
    w.u8(0x21);
    w.u32(l);
  };
  const call = (w: Writer, f: number): void => {
    w.u8(0x10);
    w.u32(f);
  };
  const memarg = (w: Writer, align: number, offset: number): void => {
    w.u32(align);
    w.u32(offset);
  };
  /** sp += n */
  const advance = (w: Writer, n: number): void => {
    gget(w, G_SP);
    i32c(w, n);
    w.u8(0x6a);
    gset(w, G_SP);
  };

  // ensure(n): grow memory so that n more bytes fit at sp; trap when it cannot.
  fns.push({
    name: '',
    params: [I32],
    results: [],
    locals: [],
    body: (w) => {
      gget(w, G_SP);
      lget(w, 0);
      w.u8(0x6a);
      w.u8(0x3f);
      w.u8(0); // memory.size
      i32c(w, 16);
      w.u8(0x74); // shl
      w.u8(0x4b); // gt_u
      w.u8(0x04);
      w.u8(0x40);
      gget(w, G_SP);
      lget(w, 0);
      w.u8(0x6a);
      w.u8(0x3f);
      w.u8(0);
      i32c(w, 16);
      w.u8(0x74);
      w.u8(0x6b); // sub
      i32c(w, 16);
      w.u8(0x76); // shr_u
      i32c(w, 1);
      w.u8(0x6a);
      w.u8(0x40);
      w.u8(0); // memory.grow
      i32c(w, -1);
      w.u8(0x46); // eq
      w.u8(0x04);
      w.u8(0x40);
      w.u8(0x00); // unreachable
      w.u8(0x0b);
      w.u8(0x0b);
    },
  });
  // frame(key, func): name the open header.
  fns.push({
    name: 'frame',
    params: [I32, I32],
    results: [],
    locals: [],
    body: (w) => {
      gget(w, G_PH);
      lget(w, 0);
      w.u8(0x36);
      memarg(w, 2, 0);
      gget(w, G_PH);
      lget(w, 1);
      w.u8(0x36);
      memarg(w, 2, 8);
    },
  });
  // mark(): close the open frame (its size into its header), open the next header.
  fns.push({
    name: 'mark',
    params: [],
    results: [],
    locals: [],
    body: (w) => {
      gget(w, G_PH);
      i32c(w, 0);
      w.u8(0x4e); // ge_s
      w.u8(0x04);
      w.u8(0x40);
      gget(w, G_PH);
      gget(w, G_SP);
      gget(w, G_PH);
      w.u8(0x6b);
      w.u8(0x36);
      memarg(w, 2, 4);
      w.u8(0x0b);
      i32c(w, 16);
      call(w, ENSURE);
      gget(w, G_SP);
      w.u8(0x42);
      w.u8(0);
      w.u8(0x37);
      memarg(w, 3, 0);
      gget(w, G_SP);
      w.u8(0x42);
      w.u8(0);
      w.u8(0x37);
      memarg(w, 3, 8);
      gget(w, G_SP);
      gset(w, G_PH);
      advance(w, 16);
    },
  });
  // save_T(v): append a value.
  const save = (name: string, type: number, store: (w: Writer) => void, size: number): void => {
    fns.push({
      name: `save_${name}`,
      params: [type],
      results: [],
      locals: [],
      body: (w) => {
        i32c(w, size);
        call(w, ENSURE);
        gget(w, G_SP);
        lget(w, 0);
        store(w);
        advance(w, size);
      },
    });
  };
  save('i32', I32, (w) => {
    w.u8(0xad); // i64.extend_i32_u
    w.u8(0x37);
    memarg(w, 3, 0);
  }, 8);
  save('i64', I64, (w) => {
    w.u8(0x37);
    memarg(w, 3, 0);
  }, 8);
  save('f32', F32, (w) => {
    w.u8(0xbc); // i32.reinterpret_f32
    w.u8(0xad);
    w.u8(0x37);
    memarg(w, 3, 0);
  }, 8);
  save('f64', F64, (w) => {
    w.u8(0x39);
    memarg(w, 3, 0);
  }, 8);
  save('v128', V128, (w) => {
    w.u8(0xfd);
    w.u32(0x0b); // v128.store
    memarg(w, 4, 0);
  }, 16);
  // References go to a table; the slot holds the table index.
  const saveRef = (name: string, type: number, table: number, counter: number): void => {
    fns.push({
      name: `save_${name}`,
      params: [type],
      results: [],
      locals: [],
      body: (w) => {
        // Grow the table when full.
        w.u8(0xfc);
        w.u32(16); // table.size
        w.u32(table);
        gget(w, counter);
        w.u8(0x4d); // le_u
        w.u8(0x04);
        w.u8(0x40);
        w.u8(0xd0);
        w.u8(type); // ref.null
        i32c(w, 64);
        w.u8(0xfc);
        w.u32(15); // table.grow
        w.u32(table);
        w.u8(0x1a); // drop
        w.u8(0x0b);
        gget(w, counter);
        lget(w, 0);
        w.u8(0x26);
        w.u32(table); // table.set
        i32c(w, 8);
        call(w, ENSURE);
        gget(w, G_SP);
        gget(w, counter);
        w.u8(0xad);
        w.u8(0x37);
        memarg(w, 3, 0);
        gget(w, counter);
        i32c(w, 1);
        w.u8(0x6a);
        gset(w, counter);
        advance(w, 8);
      },
    });
  };
  saveRef('funcref', FUNCREF, 0, G_NF);
  saveRef('externref', EXTERNREF, 1, G_NE);
  // begin(): the next frame to rewind; its values are read from its end backwards.
  fns.push({
    name: 'begin',
    params: [],
    results: [I32],
    locals: [I32],
    body: (w) => {
      gget(w, G_FI);
      gget(w, G_FRAMES);
      w.u8(0x4f); // ge_u
      w.u8(0x04);
      w.u8(0x40);
      w.u8(0x00);
      w.u8(0x0b);
      gget(w, G_LIST);
      gget(w, G_FI);
      i32c(w, 2);
      w.u8(0x74);
      w.u8(0x6a);
      w.u8(0x28);
      memarg(w, 2, 0);
      lset(w, 0);
      gget(w, G_FI);
      i32c(w, 1);
      w.u8(0x6a);
      gset(w, G_FI);
      lget(w, 0);
      lget(w, 0);
      w.u8(0x28);
      memarg(w, 2, 4);
      w.u8(0x6a);
      gset(w, G_RD);
      lget(w, 0);
      w.u8(0x28);
      memarg(w, 2, 0);
    },
  });
  const load = (name: string, type: number, loadOp: (w: Writer) => void, size: number): void => {
    fns.push({
      name: `load_${name}`,
      params: [],
      results: [type],
      locals: [],
      body: (w) => {
        gget(w, G_RD);
        i32c(w, size);
        w.u8(0x6b);
        gset(w, G_RD);
        gget(w, G_RD);
        loadOp(w);
      },
    });
  };
  load('i32', I32, (w) => {
    w.u8(0x28);
    memarg(w, 2, 0);
  }, 8);
  load('i64', I64, (w) => {
    w.u8(0x29);
    memarg(w, 3, 0);
  }, 8);
  load('f32', F32, (w) => {
    w.u8(0x2a);
    memarg(w, 2, 0);
  }, 8);
  load('f64', F64, (w) => {
    w.u8(0x2b);
    memarg(w, 3, 0);
  }, 8);
  load('v128', V128, (w) => {
    w.u8(0xfd);
    w.u32(0x00); // v128.load
    memarg(w, 4, 0);
  }, 16);
  load('funcref', FUNCREF, (w) => {
    w.u8(0x28);
    memarg(w, 2, 0);
    w.u8(0x25);
    w.u32(0); // table.get
  }, 8);
  load('externref', EXTERNREF, (w) => {
    w.u8(0x28);
    memarg(w, 2, 0);
    w.u8(0x25);
    w.u32(1);
  }, 8);

  const out = new Writer(2048);
  out.bytes(Uint8Array.of(0, 0x61, 0x73, 0x6d, 1, 0, 0, 0));
  const section = (id: number, fill: (w: Writer) => void): void => {
    out.u8(id);
    const m = out.beginSize();
    fill(out);
    out.endSize(m);
  };
  section(1, (w) => {
    w.u32(fns.length);
    for (const f of fns) {
      w.u8(0x60);
      w.u32(f.params.length);
      for (const p of f.params) w.u8(p);
      w.u32(f.results.length);
      for (const r of f.results) w.u8(r);
    }
  });
  section(3, (w) => {
    w.u32(fns.length);
    fns.forEach((_, i) => w.u32(i));
  });
  section(4, (w) => {
    w.u32(2);
    for (const t of [FUNCREF, EXTERNREF]) {
      w.u8(t);
      w.u8(0);
      w.u32(0);
    }
  });
  section(5, (w) => {
    w.u32(1);
    w.u8(1);
    w.u32(1);
    w.u32(STACK_MODULE_MAX_PAGES);
  });
  const globals = ['sp', 'ph', 'fi', 'frames', 'list', 'rd', 'nf', 'ne'];
  section(6, (w) => {
    w.u32(globals.length);
    for (const name of globals) {
      w.u8(I32);
      w.u8(1);
      i32c(w, name === 'ph' ? -1 : 0);
      w.u8(0x0b);
    }
  });
  section(7, (w) => {
    const named = fns.filter((f) => f.name !== '');
    w.u32(3 + globals.length + named.length);
    w.name('memory');
    w.u8(2);
    w.u32(0);
    w.name('funcs');
    w.u8(1);
    w.u32(0);
    w.name('externs');
    w.u8(1);
    w.u32(1);
    globals.forEach((name, i) => {
      w.name(name);
      w.u8(3);
      w.u32(i);
    });
    fns.forEach((f, i) => {
      if (f.name === '') return;
      w.name(f.name);
      w.u8(0);
      w.u32(i);
    });
  });
  section(10, (w) => {
    w.u32(fns.length);
    for (const f of fns) {
      const m = w.beginSize();
      w.u32(f.locals.length);
      for (const l of f.locals) {
        w.u32(1);
        w.u8(l);
      }
      f.body(w);
      w.u8(0x0b);
      w.endSize(m);
    }
  });
  return out.finish();
}
