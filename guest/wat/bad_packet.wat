;; bad_packet: export main sends an 8-byte packet header whose size field is 4 through gate.io_65536; the host must kill it with ABI_VIOLATION.
(module
  (import "gate" "io_65536" (func $io (param i32 i32 i32 i32 i32 i32 i64 i32)))
  (memory 1)
  ;; Header: size 4 (invalid: below 8), code -1, domain 0, index 0.
  (data (i32.const 64) "\04\00\00\00\ff\ff\00\00")

  (func (export "main")
    (local $sent i32)
    ;; Send iovec at 0: {64, 8}; bytes sent are counted at 16.
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
    ;; Give an asynchronous host one second to notice, then return (a
    ;; HALTED instance means the violation went undetected).
    (call $io (i32.const 0) (i32.const 0) (i32.const 0)
              (i32.const 0) (i32.const 0) (i32.const 0)
              (i64.const 1000000000) (i32.const 0))))
