;; flood: export flood discovers "catalog" and then sends "json" calls to it forever without ever reading anything (host backpressure test).
(module
  (import "env" "__gate_io_65536" (func $io (param i32 i32 i32 i32 i32 i32 i64 i32)))
  (memory 1)
  ;; Discovery request at 64: size 18, code -1, domain call, count 1,
  ;; name "catalog" (length 7); 24 bytes with padding.
  (data (i32.const 64) "\12\00\00\00\ff\ff\00\00\01\00\07catalog\00\00\00\00\00\00")
  ;; Catalog call at 96: size 12, code 0 (catalog is the first name
  ;; discovered), domain call, content "json"; 16 bytes with padding.
  (data (i32.const 96) "\0c\00\00\00\00\00\00\00json\00\00\00\00")

  ;; Send len bytes at ptr completely (gate io may send only part, or
  ;; nothing: it also returns when input is waiting, which we never read).
  (func $send_all (param $ptr i32) (param $len i32)
    (local $sent i32)
    (loop $more
      (i32.store (i32.const 0) (i32.add (local.get $ptr) (local.get $sent)))
      (i32.store (i32.const 4) (i32.sub (local.get $len) (local.get $sent)))
      (i32.store (i32.const 16) (i32.const 0))
      (call $io (i32.const 0) (i32.const 0) (i32.const 0)
                (i32.const 0) (i32.const 1) (i32.const 16)
                (i64.const -1) (i32.const 0))
      (local.set $sent (i32.add (local.get $sent) (i32.load (i32.const 16))))
      (br_if $more (i32.lt_u (local.get $sent) (local.get $len)))))

  (func (export "flood")
    (call $send_all (i32.const 64) (i32.const 24))
    (loop $forever
      (call $send_all (i32.const 96) (i32.const 16))
      (br $forever))))
