;; nomem: a module without memory calls clock_time_get with the non-null pointer 16; the host's store must trap (KILLED, MEMORY_ACCESS_OUT_OF_BOUNDS).
(module
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock_time_get (param i32 i64 i32) (result i32)))
  (func (export "main")
    (drop (call $clock_time_get (i32.const 0) (i64.const 1) (i32.const 16)))))
