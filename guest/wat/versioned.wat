;; versioned: loops whose number of iterations is known only when they start
;; (a counter from a parameter, stepped by a constant, tested against a
;; parameter or a constant), in the shapes compilers emit, and bounds that
;; would make them run without end or wrap around. Each function takes the
;; counter's first value and the bound and returns how many times its loop
;; body ran. Export run calls them with varied arguments in a loop and writes
;; the running sums to the debug log.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory 1)

  ;; for (j = i; j != b; j += 2), the bound first, the step in the test (clang's matmul).
  (func $ne_up2 (export "ne_up2") (param $i i32) (param $b i32) (result i32) (local $n i32)
    (loop $l
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br_if $l (i32.ne (local.get $b) (local.tee $i (i32.add (local.get $i) (i32.const 2))))))
    (local.get $n))

  ;; i += 3 while i < b, signed.
  (func $lt_s3 (export "lt_s3") (param $i i32) (param $b i32) (result i32) (local $n i32)
    (loop $l
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (local.set $i (i32.add (local.get $i) (i32.const 3)))
      (br_if $l (i32.lt_s (local.get $i) (local.get $b))))
    (local.get $n))

  ;; i += 1 while i <= b, unsigned: without end when b is 0xffffffff.
  (func $le_u1 (export "le_u1") (param $i i32) (param $b i32) (result i32) (local $n i32)
    (loop $l
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.le_u (local.get $i) (local.get $b))))
    (local.get $n))

  ;; i -= 1 while i > b, signed; the bound on the left (b < i).
  (func $gt_s_down (export "gt_s_down") (param $i i32) (param $b i32) (result i32) (local $n i32)
    (loop $l
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (local.set $i (i32.add (local.get $i) (i32.const -1)))
      (br_if $l (i32.lt_s (local.get $b) (local.get $i))))
    (local.get $n))

  ;; i -= 4 while i >= b, unsigned: wraps without end when b < 4.
  (func $ge_u_down4 (export "ge_u_down4") (param $i i32) (param $b i32) (result i32) (local $n i32)
    (loop $l
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (local.set $i (i32.add (local.get $i) (i32.const -4)))
      (br_if $l (i32.ge_u (local.get $i) (local.get $b))))
    (local.get $n))

  ;; Rotated: the exit tested before the step, br 0 at the end; i += 5 until i >= b.
  (func $rotated5 (export "rotated5") (param $i i32) (param $b i32) (result i32) (local $n i32)
    (block $out
      (loop $l
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (br_if $out (i32.ge_s (local.get $i) (local.get $b)))
        (local.set $i (i32.add (local.get $i) (i32.const 5)))
        (br $l)))
    (local.get $n))

  ;; Counting down to zero by the counter itself (b unused): 2^32 iterations from 0.
  (func $tee_down (export "tee_down") (param $i i32) (param $b i32) (result i32) (local $n i32)
    (loop $l
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br_if $l (local.tee $i (i32.add (local.get $i) (i32.const -1)))))
    (local.get $n))

  ;; i -= 3 while i != b: without end unless the distance is a multiple of 3 (modulo 2^32).
  (func $ne_down3 (export "ne_down3") (param $i i32) (param $b i32) (result i32) (local $n i32)
    (loop $l
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br_if $l (i32.ne (local.tee $i (i32.add (local.get $i) (i32.const -3))) (local.get $b))))
    (local.get $n))

  ;; i += 1 while i < 1000 (a constant bound), leaving early from a nested block after 700 iterations:
  ;; not versioned (its iterations are not known when it starts), it keeps its check.
  (func $early (export "early") (param $i i32) (param $b i32) (result i32) (local $n i32)
    (block $out
      (loop $l
        (block $skip
          (br_if $skip (i32.lt_u (local.get $n) (i32.const 700)))
          (br $out))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $l (i32.lt_s (local.get $i) (i32.const 1000)))))
    (local.get $n))

  ;; i += 1 while i <= 0x7fffffff (a constant bound): wraps without end.
  (func $le_max (export "le_max") (param $i i32) (param $b i32) (result i32) (local $n i32)
    (loop $l
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.le_s (local.get $i) (i32.const 0x7fffffff))))
    (local.get $n))

  ;; Writes v in decimal at p; returns its length.
  (func $decimal (param $p i32) (param $v i32) (result i32) (local $len i32) (local $k i32) (local $t i32)
    (local.set $t (local.get $v))
    (loop $count
      (local.set $len (i32.add (local.get $len) (i32.const 1)))
      (local.set $t (i32.div_u (local.get $t) (i32.const 10)))
      (br_if $count (local.get $t)))
    (local.set $k (local.get $len))
    (loop $write
      (local.set $k (i32.sub (local.get $k) (i32.const 1)))
      (i32.store8 (i32.add (local.get $p) (local.get $k)) (i32.add (i32.const 48) (i32.rem_u (local.get $v) (i32.const 10))))
      (local.set $v (i32.div_u (local.get $v) (i32.const 10)))
      (br_if $write (local.get $k)))
    (local.get $len))

  ;; 40 rounds of the functions above with arguments that vary by round (all of them end); a line with the round and the running sum each.
  (func (export "run") (local $round i32) (local $sum i32) (local $len i32) (local $r i32)
    (loop $rounds
      (local.set $r (i32.mul (local.get $round) (i32.const 37)))
      (local.set $sum (i32.add (local.get $sum)
        (i32.add
          (i32.add (call $ne_up2 (local.get $r) (i32.add (local.get $r) (i32.const 2000)))
                   (call $lt_s3 (i32.sub (i32.const 0) (local.get $r)) (i32.const 1500)))
          (i32.add
            (i32.add (call $le_u1 (local.get $r) (i32.add (local.get $r) (i32.const 999)))
                     (call $gt_s_down (i32.add (local.get $r) (i32.const 3000)) (local.get $r)))
            (i32.add
              (i32.add (call $ge_u_down4 (i32.const 4000) (i32.add (local.get $r) (i32.const 4)))
                       (call $rotated5 (local.get $r) (i32.const 2500)))
              (i32.add
                (i32.add (call $tee_down (i32.add (local.get $r) (i32.const 800)) (i32.const 0))
                         (call $ne_down3 (i32.add (local.get $r) (i32.const 3000)) (local.get $r)))
                (call $early (local.get $r) (i32.const 0))))))))
      (local.set $len (call $decimal (i32.const 100) (local.get $round)))
      (i32.store8 (i32.add (i32.const 100) (local.get $len)) (i32.const 32))
      (local.set $len (i32.add (i32.add (local.get $len) (i32.const 1))
        (call $decimal (i32.add (i32.const 101) (local.get $len)) (local.get $sum))))
      (i32.store8 (i32.add (i32.const 100) (local.get $len)) (i32.const 10))
      (i32.store (i32.const 16) (i32.const 100))
      (i32.store (i32.const 20) (i32.add (local.get $len) (i32.const 1)))
      (drop (call $fd_write (i32.const 2) (i32.const 16) (i32.const 1) (i32.const 24)))
      (br_if $rounds (i32.ne (local.tee $round (i32.add (local.get $round) (i32.const 1))) (i32.const 40))))))
