import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import binaryen from 'binaryen';
import { FakeHost } from './fake-host.ts';
import { AbiImportError, checkImports, createImports, isBlockingImport, resolveImport } from './imports.ts';
import type { ModuleImport } from './imports.ts';

const fn = (module: string, field: string, params: string[], results: string[] = ['i32']): ModuleImport => ({
  module,
  field,
  kind: 'func',
  params,
  results,
});
const IO_PARAMS = ['i32', 'i32', 'i32', 'i32', 'i32', 'i32', 'i64', 'i32'];

function refusal(imports: ModuleImport[], message: string): void {
  assert.throws(
    () => checkImports(imports),
    (e: unknown) => {
      assert.ok(e instanceof AbiImportError);
      assert.equal(e.code, 'ERR_ABI_IMPORT');
      assert.equal(e.message, message);
      return true;
    },
  );
}

const WASI_NAMES = [
  'args_get', 'args_sizes_get', 'clock_res_get', 'clock_time_get', 'environ_get', 'environ_sizes_get',
  'fd_advise', 'fd_allocate', 'fd_close', 'fd_datasync', 'fd_fdstat_get', 'fd_fdstat_set_flags',
  'fd_fdstat_set_rights', 'fd_filestat_get', 'fd_filestat_set_size', 'fd_filestat_set_times', 'fd_pread',
  'fd_prestat_dir_name', 'fd_prestat_get', 'fd_pwrite', 'fd_read', 'fd_readdir', 'fd_renumber', 'fd_seek',
  'fd_sync', 'fd_tell', 'fd_write', 'path_create_directory', 'path_filestat_get', 'path_filestat_set_times',
  'path_link', 'path_open', 'path_readlink', 'path_remove_directory', 'path_rename', 'path_symlink',
  'path_unlink_file', 'poll_oneoff', 'proc_exit', 'proc_raise', 'random_get', 'sched_yield', 'sock_recv',
  'sock_send', 'sock_shutdown',
];

describe('name resolution', () => {
  test('all 45 WASI names in both WASI modules and through env.__wasi_', () => {
    assert.equal(WASI_NAMES.length, 45);
    for (const name of WASI_NAMES) {
      for (const [m, f] of [
        ['wasi_snapshot_preview1', name],
        ['wasi_unstable', name],
        ['env', `__wasi_${name}`],
      ]) {
        const r = resolveImport(m, f);
        assert.equal(r.namespace, 'wasi');
        assert.equal(r.name, name);
      }
    }
  });

  test('signatures of §1.2 (spot checks) are accepted', () => {
    checkImports([
      fn('wasi_snapshot_preview1', 'clock_time_get', ['i32', 'i64', 'i32']),
      fn('wasi_snapshot_preview1', 'proc_exit', ['i32'], []),
      fn('wasi_snapshot_preview1', 'sched_yield', []),
      fn('wasi_snapshot_preview1', 'path_open', ['i32', 'i32', 'i32', 'i32', 'i32', 'i64', 'i64', 'i32', 'i32']),
      fn('wasi_snapshot_preview1', 'path_filestat_set_times', ['i32', 'i32', 'i32', 'i32', 'i64', 'i64', 'i32']),
      fn('wasi_unstable', 'fd_seek', ['i32', 'i64', 'i32', 'i32']),
      fn('env', '__wasi_fd_pread', ['i32', 'i32', 'i32', 'i64', 'i32']),
      fn('env', '__gate_fd_65536', []),
      fn('env', '__gate_io_65536', IO_PARAMS, []),
      fn('gate', 'io_131072', IO_PARAMS, []),
      fn('gate', 'fd_99999999999999999999999', []),
    ]);
  });

  test('gate suffix rules', () => {
    for (const f of ['io_65536', 'io_65537', 'io_4294967295', 'io_4294967296', 'fd_123456789012345678901234567890']) {
      assert.equal(resolveImport('gate', f).name, f.slice(0, 2));
    }
    refusal([fn('gate', 'io_65535', IO_PARAMS, [])], 'value of symbol size suffix is too small: io_65535');
    refusal([fn('env', '__gate_fd_1', [])], 'value of symbol size suffix is too small: fd_1');
    for (const suffix of ['065536', '0', '', '+65536', '-1', '65536x', '6.5536', '６５５３６', ' 65536', '0x10000']) {
      refusal([fn('env', `__gate_io_${suffix}`, IO_PARAMS, [])], `invalid size suffix in symbol: io_${suffix}`);
    }
    // Split at the last underscore: the prefix must be exactly fd or io.
    refusal([fn('gate', 'foo_io_65536', [])], 'import function not supported: "gate" "foo_io_65536"');
    refusal([fn('gate', '_65536', [])], 'import function not supported: "gate" "_65536"');
    refusal([fn('gate', 'io', [])], 'import function not supported: "gate" "io"');
    refusal([fn('env', '__gate_io_6_5536', [])], 'import function not supported: "env" "__gate_io_6_5536"');
    refusal([fn('env', '__gate_', [])], 'import function not supported: "env" "__gate_"');
    // The suffix is checked before the signature.
    refusal([fn('gate', 'io_1', [])], 'value of symbol size suffix is too small: io_1');
  });

  test('unknown names, with original names in Go quoting', () => {
    refusal([fn('env', 'rt_debug', ['i32', 'i32'], [])], 'import function not supported: "env" "rt_debug"');
    refusal([fn('env', 'memcpy', ['i32', 'i32', 'i32'])], 'import function not supported: "env" "memcpy"');
    refusal([fn('env', '__gate_debug_type_not_supported', [], [])], 'import function not supported: "env" "__gate_debug_type_not_supported"');
    refusal([fn('wasi_snapshot_preview1', 'sock_accept', ['i32', 'i32', 'i32'])], 'import function not supported: "wasi_snapshot_preview1" "sock_accept"');
    refusal([fn('env', '__wasi_nope', [])], 'import function not supported: "env" "__wasi_nope"');
    refusal([fn('wasi', 'fd_write', ['i32', 'i32', 'i32', 'i32'])], 'import function not supported: "wasi" "fd_write"');
    refusal([fn('wasi_snapshot_preview1', 'toString', [])], 'import function not supported: "wasi_snapshot_preview1" "toString"');
    refusal([fn('a"b', 'c\n\x01\u0085é', [])], 'import function not supported: "a\\"b" "c\\n\\x01\\u0085é"');
  });

  test('wrong signatures print the expected and actual types with the original names', () => {
    refusal(
      [fn('env', '__wasi_fd_write', ['i32', 'i32', 'i32'])],
      'function env.__wasi_fd_write (i32, i32, i32, i32) i32 imported with wrong signature (i32, i32, i32) i32',
    );
    refusal(
      [fn('wasi_snapshot_preview1', 'proc_exit', ['i32'])],
      'function wasi_snapshot_preview1.proc_exit (i32) imported with wrong signature (i32) i32',
    );
    refusal(
      [fn('env', '__gate_io_65536', IO_PARAMS)],
      'function env.__gate_io_65536 (i32, i32, i32, i32, i32, i32, i64, i32) imported with wrong signature (i32, i32, i32, i32, i32, i32, i64, i32) i32',
    );
    refusal(
      [fn('wasi_snapshot_preview1', 'sched_yield', ['f64'], ['i32', 'i64'])],
      'function wasi_snapshot_preview1.sched_yield () i32 imported with wrong signature (f64) (i32, i64)',
    );
    refusal([fn('gate', 'fd_65536', [], ['i64'])], 'function gate.fd_65536 () i32 imported with wrong signature () i64');
  });

  test('globals, memories and tables', () => {
    const global = (module: string, field: string, mutable = false): ModuleImport => ({ module, field, kind: 'global', mutable });
    refusal([global('env', 'g')], 'import global not supported: "env" "g"');
    refusal([fn('env', 'f', []), global('env', 'g', true)], 'unsupported mutable global in import #1');
    refusal([{ module: 'env', field: 'memory', kind: 'memory' }], 'import kind not supported: memory');
    refusal([{ module: 'env', field: 't', kind: 'table' }], 'import kind not supported: table');
    refusal(Array.from({ length: 33 }, (_, i) => global('env', `g${i}`)), 'too many imported globals');
    // Order: the import section scan first, then functions, then globals.
    refusal([global('env', 'g'), fn('env', 'f', []), { module: 'env', field: 'm', kind: 'memory' }], 'import kind not supported: memory');
    refusal([global('env', 'g'), fn('env', 'f', [])], 'import function not supported: "env" "f"');
    refusal([fn('env', '__wasi_fd_close', ['i32']), fn('env', 'f', []), fn('env', 'h', [])], 'import function not supported: "env" "f"');
  });

  test('isBlockingImport: io_N, poll_oneoff and the deficiency calls only', () => {
    const blocking = ['poll_oneoff', 'clock_time_get', 'random_get', 'proc_raise', 'fd_close', 'fd_renumber', 'fd_fdstat_set_rights'];
    for (const name of WASI_NAMES) {
      const want = blocking.includes(name);
      assert.equal(isBlockingImport('wasi_snapshot_preview1', name), want, name);
      assert.equal(isBlockingImport('wasi_unstable', name), want, name);
      assert.equal(isBlockingImport('env', `__wasi_${name}`), want, name);
    }
    assert.equal(isBlockingImport('env', '__gate_io_65536'), true);
    assert.equal(isBlockingImport('gate', 'io_65536'), true);
    assert.equal(isBlockingImport('env', '__gate_fd_65536'), false);
    assert.equal(isBlockingImport('wasi_snapshot_preview1', 'proc_exit'), false);
    assert.equal(isBlockingImport('env', 'memcpy'), false);
    assert.equal(isBlockingImport('gate', 'io_1'), false);
  });
});

describe('createImports', () => {
  test('keys by the original names and resolves each import independently', () => {
    const h = new FakeHost();
    const object = createImports(h, [
      { module: 'env', field: '__gate_fd_65536', kind: 'func' },
      { module: 'gate', field: 'fd_70000', kind: 'func' },
      { module: 'wasi_unstable', field: 'sock_recv', kind: 'func' },
      { module: 'wasi_snapshot_preview1', field: 'sock_recv', kind: 'function' },
      { module: 'env', field: 'g', kind: 'global' },
    ]);
    assert.deepEqual(Object.keys(object).sort(), ['env', 'gate', 'wasi_snapshot_preview1', 'wasi_unstable']);
    const call = (m: string, f: string, ...args: unknown[]): unknown => (object[m][f] as (...a: unknown[]) => unknown)(...args);
    assert.equal(call('env', '__gate_fd_65536'), 4);
    assert.equal(call('gate', 'fd_70000'), 4);
    assert.equal(call('wasi_unstable', 'sock_recv', 4, 0, 0, 0, 0, 0), 57);
    assert.equal(call('wasi_snapshot_preview1', 'sock_recv', 0, 0, 0, 0, 0, 0), 63);
    assert.equal(Object.hasOwn(object.env, 'g'), false);
  });

  test('unknown names are refused', () => {
    assert.throws(() => createImports(new FakeHost(), [{ module: 'env', field: 'memcpy', kind: 'func' }]), AbiImportError);
  });

  test('a binaryen-built module linking env.__wasi_fd_write and env.__gate_io_65536', async () => {
    const wat = `(module
      (import "env" "__wasi_fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
      (import "env" "__gate_io_65536" (func $io (param i32 i32 i32 i32 i32 i32 i64 i32)))
      (memory (export "memory") 1)
      (data (i32.const 1000) "hello, world\\n")
      (func (export "run") (result i32)
        (i32.store (i32.const 100) (i32.const 1000))
        (i32.store (i32.const 104) (i32.const 13))
        (drop (call $fd_write (i32.const 2) (i32.const 100) (i32.const 1) (i32.const 200)))
        (call $io (i32.const 0) (i32.const 0) (i32.const 0)
                  (i32.const 100) (i32.const 1) (i32.const 204)
                  (i64.const 0) (i32.const 208))
        (i32.add (i32.load (i32.const 200)) (i32.load (i32.const 204)))))`;
    const mod = binaryen.parseText(wat);
    assert.ok(mod.validate());

    // The loader's view of the imports, typed as checkImports wants them.
    const typeName = (t: number): string =>
      ({ [binaryen.i32]: 'i32', [binaryen.i64]: 'i64', [binaryen.f32]: 'f32', [binaryen.f64]: 'f64' })[t] ?? '?';
    const imports: ModuleImport[] = [];
    for (let i = 0; i < mod.getNumFunctions(); i++) {
      const info = binaryen.getFunctionInfo(mod.getFunctionByIndex(i));
      if (!info.module) continue;
      imports.push({
        module: info.module,
        field: info.base ?? '',
        kind: 'func',
        params: binaryen.expandType(info.params).map(typeName),
        results: binaryen.expandType(info.results).map(typeName),
      });
    }
    const binary = mod.emitBinary();
    mod.dispose();
    checkImports(imports);

    const h = new FakeHost();
    const compiled = await WebAssembly.compile(new Uint8Array(binary));
    const instance = await WebAssembly.instantiate(compiled, createImports(h, imports));
    h.memory = new Uint8Array((instance.exports.memory as WebAssembly.Memory).buffer);
    const result = (instance.exports.run as () => number)();
    assert.equal(h.logText(), 'hello, world\n');
    assert.equal(new TextDecoder().decode(Uint8Array.from(h.output)), 'hello, world\n');
    assert.equal(result, 26);
    assert.equal(h.memory[208], 1); // started flag
  });
});
