;; touch.wat - a program with N MiB of touched memory, for the snapshot bench.
;;
;; Exports touch_1mib and touch_64mib grow the memory to 1 or 64 MiB, fill
;; every byte of it with a xorshift32 sequence (seed 0x12345678; no 8-byte
;; word of it is zero, so a snapshot cannot leave any of it out), then spin
;; forever in a loop without calls: a busy program that only a suspend or a
;; kill request stops. The bench knows the fill is done when the last word
;; of memory is non-zero. Compiled with Binaryen's text parser by the bench
;; (bench/programs.ts).
(module
  (memory (export "memory") 1)

  (func $touch (param $pages i32)
    (local $i i32) (local $end i32) (local $x i32)
    (if (i32.gt_u (local.get $pages) (memory.size))
      (then
        (if (i32.lt_s (memory.grow (i32.sub (local.get $pages) (memory.size))) (i32.const 0))
          (then (unreachable)))))
    (local.set $end (i32.mul (local.get $pages) (i32.const 65536)))
    (local.set $x (i32.const 0x12345678))
    (loop $fill
      (local.set $x (i32.xor (local.get $x) (i32.shl (local.get $x) (i32.const 13))))
      (local.set $x (i32.xor (local.get $x) (i32.shr_u (local.get $x) (i32.const 17))))
      (local.set $x (i32.xor (local.get $x) (i32.shl (local.get $x) (i32.const 5))))
      (i32.store (local.get $i) (local.get $x))
      (local.set $i (i32.add (local.get $i) (i32.const 4)))
      (br_if $fill (i32.lt_u (local.get $i) (local.get $end))))
    (loop $spin
      (br $spin)))

  (func (export "touch_1mib") (call $touch (i32.const 16)))
  (func (export "touch_64mib") (call $touch (i32.const 1024))))
