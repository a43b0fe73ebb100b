;; counted: loops whose number of iterations is known before they start, in
;; the shapes compilers emit (a counter set to a constant, stepped by a
;; constant, tested against a constant), and loops that look like them but
;; are not counted. Each function returns how many times its loop body ran;
;; the counted-loop analysis must find exactly that number or refuse. Export
;; run calls them all in a loop and writes the sums to the debug log.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory 1)
  (global $g (mut i32) (i32.const 0))

  ;; for (i = 0; i != 64; i += 4): the test after the step, by br_if 0.
  (func $ne_up (export "ne_up") (result i32) (local $i i32) (local $n i32)
    (local.set $i (i32.const 0))
    (loop $l
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br_if $l (i32.ne (local.tee $i (i32.add (local.get $i) (i32.const 4))) (i32.const 64))))
    (local.get $n))

  ;; i from 10 down to 0 by br_if on the counter itself.
  (func $down_tee (export "down_tee") (result i32) (local $i i32) (local $n i32)
    (local.set $i (i32.const 10))
    (loop $l
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br_if $l (local.tee $i (i32.add (local.get $i) (i32.const -1)))))
    (local.get $n))

  ;; i < 100, signed, step 7 (not a divisor): ceil.
  (func $lt_s (export "lt_s") (result i32) (local $i i32) (local $n i32)
    (local.set $i (i32.const -5))
    (loop $l
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (local.set $i (i32.add (local.get $i) (i32.const 7)))
      (br_if $l (i32.lt_s (local.get $i) (i32.const 100))))
    (local.get $n))

  ;; Unsigned, crossing 2^31.
  (func $lt_u_wide (export "lt_u_wide") (result i32) (local $i i32) (local $n i32)
    (local.set $i (i32.const 0x7ffffff0))
    (loop $l
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (local.set $i (i32.add (local.get $i) (i32.const 3)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 0x80000010))))
    (local.get $n))

  ;; Wraps around 2^32 before reaching its limit.
  (func $wrap (export "wrap") (result i32) (local $i i32) (local $n i32)
    (local.set $i (i32.const -8))
    (loop $l
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br_if $l (i32.ne (local.tee $i (i32.add (local.get $i) (i32.const 2))) (i32.const 6))))
    (local.get $n))

  ;; Rotated: the exit tested in the middle (before the step), br 0 at the end,
  ;; work in a nested block, as clang emits a for loop.
  (func $rotated (export "rotated") (result i32) (local $i i32) (local $n i32) (local $x i32)
    (local.set $i (i32.const 0))
    (local.set $x (i32.const 1))
    (block $out
      (loop $l
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (br_if $out (i32.eq (local.get $i) (i32.const 252)))
        (block $skip
          (br_if $skip (i32.and (local.get $i) (i32.const 8)))
          (local.set $x (i32.mul (local.get $x) (i32.const 3))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $l)))
    (global.set $g (local.get $x))
    (local.get $n))

  ;; Rotated with the exit after the step, and an early exit that is not taken.
  (func $rotated_after (export "rotated_after") (result i32) (local $i i32) (local $n i32)
    (local.set $i (i32.const 3))
    (block $out
      (loop $l
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (br_if $out (i32.eq (local.get $n) (i32.const 1000)))
        (local.set $i (i32.add (local.get $i) (i32.const -1)))
        (br_if $out (i32.le_s (local.get $i) (i32.const -20)))
        (br $l)))
    (local.get $n))

  ;; Not counted: the counter is written twice.
  (func $twice (export "twice") (result i32) (local $i i32) (local $n i32)
    (local.set $i (i32.const 0))
    (loop $l
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (if (i32.eq (local.get $n) (i32.const 3)) (then (local.set $i (i32.const 0))))
      (br_if $l (i32.ne (local.get $i) (i32.const 5))))
    (local.get $n))

  ;; Not counted: the counter's start is not a constant.
  (func $from_global (export "from_global") (result i32) (local $i i32) (local $n i32)
    (local.set $i (i32.and (global.get $g) (i32.const 7)))
    (loop $l
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br_if $l (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (i32.const 40))))
    (local.get $n))

  ;; Not counted: a second back edge from a nested block.
  (func $two_edges (export "two_edges") (result i32) (local $i i32) (local $n i32)
    (local.set $i (i32.const 0))
    (loop $l
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (block (br_if $l (i32.eq (local.get $n) (i32.const 2))))
      (br_if $l (i32.ne (local.get $i) (i32.const 9))))
    (local.get $n))

  ;; Not counted: too many iterations to count (2^20).
  (func $long (export "long") (result i32) (local $i i32) (local $n i32)
    (local.set $i (i32.const 0))
    (loop $l
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br_if $l (i32.ne (local.tee $i (i32.add (local.get $i) (i32.const 1))) (i32.const 0x100000))))
    (local.get $n))

  ;; Counted, but its iterations cost more than a region may be charged at once:
  ;; it keeps its check.
  (func $costly (export "costly") (result i32) (local $i i32) (local $n i32) (local $x i32)
    (local.set $i (i32.const 0))
    (loop $l
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (local.set $x (i32.xor (i32.mul (local.get $x) (i32.const 31)) (local.get $n)))
      (local.set $x (i32.xor (i32.mul (local.get $x) (i32.const 31)) (local.get $n)))
      (local.set $x (i32.xor (i32.mul (local.get $x) (i32.const 31)) (local.get $n)))
      (br_if $l (i32.ne (local.tee $i (i32.add (local.get $i) (i32.const 1))) (i32.const 60000))))
    (global.set $g (local.get $x))
    (local.get $n))

  ;; Decimal digits of v at p (up to 10), returns the length.
  (func $decimal (param $p i32) (param $v i32) (result i32) (local $len i32) (local $k i32)
    (local.set $k (local.get $v))
    (loop $count
      (local.set $len (i32.add (local.get $len) (i32.const 1)))
      (br_if $count (local.tee $k (i32.div_u (local.get $k) (i32.const 10)))))
    (local.set $k (local.get $len))
    (loop $write
      (local.set $k (i32.sub (local.get $k) (i32.const 1)))
      (i32.store8 (i32.add (local.get $p) (local.get $k)) (i32.add (i32.const 48) (i32.rem_u (local.get $v) (i32.const 10))))
      (local.set $v (i32.div_u (local.get $v) (i32.const 10)))
      (br_if $write (local.get $k)))
    (local.get $len))

  ;; 50 rounds of every function above; a line with the round and the running sum each.
  (func (export "run") (local $round i32) (local $sum i32) (local $len i32)
    (loop $rounds
      (local.set $sum (i32.add (local.get $sum)
        (i32.add (i32.add (i32.add (call $ne_up) (call $down_tee)) (i32.add (call $lt_s) (call $lt_u_wide)))
          (i32.add (i32.add (i32.add (call $wrap) (call $rotated)) (i32.add (call $rotated_after) (call $twice)))
            (i32.add (i32.add (call $from_global) (call $two_edges)) (i32.add (call $long) (call $costly)))))))
      (local.set $len (call $decimal (i32.const 100) (local.get $round)))
      (i32.store8 (i32.add (i32.const 100) (local.get $len)) (i32.const 32))
      (local.set $len (i32.add (i32.add (local.get $len) (i32.const 1))
        (call $decimal (i32.add (i32.const 101) (local.get $len)) (local.get $sum))))
      (i32.store8 (i32.add (i32.const 100) (local.get $len)) (i32.const 10))
      (i32.store (i32.const 16) (i32.const 100))
      (i32.store (i32.const 20) (i32.add (local.get $len) (i32.const 1)))
      (drop (call $fd_write (i32.const 2) (i32.const 16) (i32.const 1) (i32.const 24)))
      (br_if $rounds (i32.ne (local.tee $round (i32.add (local.get $round) (i32.const 1))) (i32.const 50))))))
