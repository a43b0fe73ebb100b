;; wasi_unstable: writes "unstable\n" to the debug log through wasi_unstable.fd_write, the accepted synonym of wasi_snapshot_preview1.
(module
  (import "wasi_unstable" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory 1)
  (data (i32.const 64) "unstable\n")
  (func (export "main")
    (i32.store (i32.const 16) (i32.const 64))
    (i32.store (i32.const 20) (i32.const 9))
    (drop (call $fd_write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 24)))))
