;; switch: an interpreter-shaped loop, a br_table into nested blocks (a C
;; switch) whose cases call functions that loop, so that a suspension can
;; happen in any case, at any depth of the nest. Export run writes a line
;; per step to the debug log: the step, the case and a running sum.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory 1)

  ;; Write len bytes at ptr to fd 2 (the debug log); iovec at 16, count at 24.
  (func $debug (param $ptr i32) (param $len i32)
    (i32.store (i32.const 16) (local.get $ptr))
    (i32.store (i32.const 20) (local.get $len))
    (drop (call $fd_write (i32.const 2) (i32.const 16) (i32.const 1) (i32.const 24))))

  ;; n steps of a loop; returns n * k.
  (func $work (param $n i32) (param $k i32) (result i32)
    (local $sum i32)
    (loop $again
      (local.set $sum (i32.add (local.get $sum) (local.get $k)))
      (br_if $again (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
    (local.get $sum))

  ;; Two decimal digits of v at p.
  (func $digits (param $p i32) (param $v i32)
    (i32.store8 (local.get $p) (i32.add (i32.const 48) (i32.rem_u (i32.div_u (local.get $v) (i32.const 10)) (i32.const 10))))
    (i32.store8 offset=1 (local.get $p) (i32.add (i32.const 48) (i32.rem_u (local.get $v) (i32.const 10)))))

  (func (export "run")
    (local $step i32) (local $case i32) (local $sum i32)
    (loop $steps
      (local.set $case (i32.rem_u (i32.mul (local.get $step) (i32.const 7)) (i32.const 6)))
      (block $done
        (block $c5
          (block $c4
            (block $c3
              (block $c2
                (block $c1
                  (block $c0
                    (br_table $c0 $c1 $c2 $c3 $c4 $c5 (local.get $case)))
                  ;; case 0: a call with a value below its arguments
                  (local.set $sum (i32.add (local.get $sum) (call $work (i32.const 500) (i32.const 1))))
                  (br $done))
                ;; case 1: two calls, one result kept on the stack across the other
                (local.set $sum (i32.add (call $work (i32.const 300) (i32.const 2)) (call $work (i32.const 200) (i32.const 3))))
                (br $done))
              ;; case 2: a nested block with a call inside
              (block $inner
                (br_if $inner (i32.eqz (i32.and (local.get $step) (i32.const 1))))
                (local.set $sum (i32.sub (local.get $sum) (call $work (i32.const 100) (i32.const 1)))))
              (br $done))
            ;; case 3: a loop of calls
            (local.set $case (i32.const 3))
            (loop $three
              (local.set $sum (i32.add (local.get $sum) (call $work (i32.const 50) (i32.const 1))))
              (br_if $three (local.tee $case (i32.sub (local.get $case) (i32.const 1)))))
            (br $done))
          ;; case 4: falls into case 5
          (local.set $sum (i32.xor (local.get $sum) (call $work (i32.const 70) (i32.const 5)))))
        ;; case 5
        (local.set $sum (i32.add (local.get $sum) (call $work (i32.const 90) (i32.const 7)))))
      (call $digits (i32.const 100) (local.get $step))
      (i32.store8 (i32.const 102) (i32.const 32))
      (call $digits (i32.const 103) (local.get $case))
      (i32.store8 (i32.const 105) (i32.const 32))
      (call $digits (i32.const 106) (i32.rem_u (local.get $sum) (i32.const 97)))
      (i32.store8 (i32.const 108) (i32.const 10))
      (call $debug (i32.const 100) (i32.const 9))
      (br_if $steps (i32.lt_u (local.tee $step (i32.add (local.get $step) (i32.const 1))) (i32.const 40)))))
)
