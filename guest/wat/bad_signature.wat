;; bad_signature: imports wasi_snapshot_preview1.fd_write as (i32, i32) -> i32 instead of (i32, i32, i32, i32) -> i32; refused at load time.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32) (result i32)))
  (memory 1)
  (func (export "main")
    (drop (call $fd_write (i32.const 2) (i32.const 0)))))
