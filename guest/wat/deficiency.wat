;; deficiency: ABI deficiencies: toomuch logs "ping" then asks random_get for 17 bytes; raise calls proc_raise; both end SUSPENDED, ABI_DEFICIENCY.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_raise" (func $proc_raise (param i32) (result i32)))
  (memory 1)
  (data (i32.const 64) "ping")

  (func (export "toomuch")
    (i32.store (i32.const 16) (i32.const 64))
    (i32.store (i32.const 20) (i32.const 4))
    (drop (call $fd_write (i32.const 2) (i32.const 16) (i32.const 1) (i32.const 24)))
    ;; 17 bytes exceed the 16 random bytes a run may have.
    (drop (call $random_get (i32.const 128) (i32.const 17))))

  (func (export "raise")
    (drop (call $proc_raise (i32.const 1)))))
