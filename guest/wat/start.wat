;; start: the start section writes "start\n" to the debug log before any entry function (after a short loop, so that it can be suspended inside); export after writes "after\n".
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory 1)
  ;; Text at 64 and 72; iovec built at 16 (address 0 would be a null pointer to fd_write), bytes-written counter at 24.
  (data (i32.const 64) "start\n")
  (data (i32.const 72) "after\n")

  ;; Write len bytes at ptr to fd 2 (the debug log).
  (func $debug (param $ptr i32) (param $len i32)
    (i32.store (i32.const 16) (local.get $ptr))
    (i32.store (i32.const 20) (local.get $len))
    (drop (call $fd_write (i32.const 2) (i32.const 16) (i32.const 1) (i32.const 24))))

  (func $init (local $i i32)
    (loop $next
      (br_if $next (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (i32.const 6))))
    (call $debug (i32.const 64) (local.get $i)))

  (func (export "after")
    (call $debug (i32.const 72) (i32.const 6)))

  (start $init))
