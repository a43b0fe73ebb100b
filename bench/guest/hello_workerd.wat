;; The wasm hello of the server bench's workerd worker (bench/server/workerd.ts):
;; greet() copies "hello, world\n" to the start of memory and returns its length.
(module
  (memory (export "memory") 1)
  (data (i32.const 16) "hello, world\n")
  (func (export "greet") (result i32)
    (local $i i32)
    (loop $copy
      (i32.store8 (local.get $i) (i32.load8_u offset=16 (local.get $i)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $copy (i32.lt_u (local.get $i) (i32.const 13))))
    (i32.const 13)))
