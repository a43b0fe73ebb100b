;; fib.wat - a call-heavy program for the runtime bench: naive recursive
;; Fibonacci, so nearly all the work is calls and returns.
;;
;; Export fib_debug: computes fib(n) for the n stored at address 32 (a data
;; segment; the bench may change it) and writes the result as 4 bytes,
;; little-endian, to the debug log (fd 2), so that both the plain and the
;; instrumented run can be checked. Imports only fd_write, so it passes
;; Gate's import check. Compiled with Binaryen's text parser by the bench
;; (bench/programs.ts), so no wat2wasm is needed.
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1 1)
  (data (i32.const 32) "\24\00\00\00") ;; n = 36

  (func $fib (param $n i32) (result i32)
    (if (result i32) (i32.lt_u (local.get $n) (i32.const 2))
      (then (local.get $n))
      (else
        (i32.add
          (call $fib (i32.sub (local.get $n) (i32.const 1)))
          (call $fib (i32.sub (local.get $n) (i32.const 2)))))))

  (func (export "fib_debug")
    ;; result at 16, iovec {16, 4} at 48, nwritten at 56 (Gate's fd_write
    ;; refuses an iovec array at address 0 with EFAULT)
    (i32.store (i32.const 16) (call $fib (i32.load (i32.const 32))))
    (i32.store (i32.const 48) (i32.const 16))
    (i32.store (i32.const 52) (i32.const 4))
    (drop (call $fd_write (i32.const 2) (i32.const 48) (i32.const 1) (i32.const 56)))))
