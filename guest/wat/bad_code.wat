;; bad_code: export main sends a call packet to service code 5 before any discovery; the host must kill it with ABI_VIOLATION.
(module
  (import "gate" "io_65536" (func $io (param i32 i32 i32 i32 i32 i32 i64 i32)))
  (memory 1)
  ;; Header: size 8, code 5, domain 0 (call), index 0.
  (data (i32.const 64) "\08\00\00\00\05\00\00\00")

  (func (export "main")
    (local $sent i32)
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 8))
    (block $done
      (loop $send
        (i32.store (i32.const 16) (i32.const 0))
        (call $io (i32.const 0) (i32.const 0) (i32.const 0)
                  (i32.const 0) (i32.const 1) (i32.const 16)
                  (i64.const -1) (i32.const 0))
        (local.set $sent (i32.add (local.get $sent) (i32.load (i32.const 16))))
        (i32.store (i32.const 0) (i32.add (i32.const 64) (local.get $sent)))
        (i32.store (i32.const 4) (i32.sub (i32.const 8) (local.get $sent)))
        (br_if $send (i32.lt_u (local.get $sent) (i32.const 8)))))
    ;; As in bad_packet: wait up to one second, then return.
    (call $io (i32.const 0) (i32.const 0) (i32.const 0)
              (i32.const 0) (i32.const 0) (i32.const 0)
              (i64.const 1000000000) (i32.const 0))))
