;; tables: a program whose tables and segments change while it runs
;; (table.grow, table.set, table.init, elem.drop, memory.init, data.drop) and
;; that holds function references in a local and on its operand stack while
;; it loops. Export run writes a line per round to the debug log: what each
;; table slot's function returns, then a byte copied from a passive data
;; segment. It ends by reading the data segment it dropped, which traps
;; (out of bounds): a restored run must trap too. Snapshots carry all of it.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (type $digit (func (result i32)))
  (memory 1)
  (table $t 2 funcref)
  (elem declare func $one $two $three)
  (elem $pe funcref (ref.func $three) (ref.func $one))
  (data $pd "abcdefghij")

  (func $one (result i32) (i32.const 1))
  (func $two (result i32) (i32.const 2))
  (func $three (result i32) (i32.const 3))

  ;; Write len bytes at ptr to fd 2 (the debug log); iovec at 16, count at 24.
  (func $debug (param $ptr i32) (param $len i32)
    (i32.store (i32.const 16) (local.get $ptr))
    (i32.store (i32.const 20) (local.get $len))
    (drop (call $fd_write (i32.const 2) (i32.const 16) (i32.const 1) (i32.const 24))))

  ;; Burn fuel in a loop (suspension points).
  (func $spin (param $n i32)
    (loop $again
      (br_if $again (local.tee $n (i32.sub (local.get $n) (i32.const 1))))))

  (func (export "run")
    (local $round i32) (local $f funcref) (local $i i32) (local $p i32)
    ;; Table: [null null] -> grown to 5 with $two -> slots 2, 3 from the passive segment.
    (drop (table.grow $t (ref.func $two) (i32.const 3)))
    (table.init $t $pe (i32.const 2) (i32.const 0) (i32.const 2))
    (elem.drop $pe)
    (table.set $t (i32.const 0) (ref.func $three))
    (table.set $t (i32.const 1) (ref.func $one))
    (memory.init $pd (i32.const 200) (i32.const 0) (i32.const 10))
    (data.drop $pd)
    (loop $rounds
      ;; A reference in a local across a loop.
      (local.set $f (table.get $t (i32.rem_u (local.get $round) (table.size $t))))
      (call $spin (i32.const 3000))
      ;; A reference on the operand stack across a call that loops.
      (table.set $t (i32.const 4) (block (result funcref) (local.get $f) (call $spin (i32.const 3000))))
      ;; Rotate the table by one.
      (local.set $f (table.get $t (i32.const 0)))
      (local.set $i (i32.const 0))
      (loop $shift
        (table.set $t (local.get $i) (table.get $t (i32.add (local.get $i) (i32.const 1))))
        (br_if $shift (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (i32.const 4))))
      (table.set $t (i32.const 4) (local.get $f))
      ;; The line: a digit per slot, then a byte of the data segment's copy.
      (local.set $p (i32.const 100))
      (local.set $i (i32.const 0))
      (loop $slots
        (i32.store8 (local.get $p) (i32.add (i32.const 48) (call_indirect (type $digit) (local.get $i))))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br_if $slots (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (table.size $t))))
      (i32.store8 (local.get $p) (i32.const 32))
      (i32.store8 offset=1 (local.get $p) (i32.load8_u offset=200 (local.get $round)))
      (i32.store8 offset=2 (local.get $p) (i32.const 10))
      (call $debug (i32.const 100) (i32.add (i32.sub (local.get $p) (i32.const 100)) (i32.const 3)))
      (br_if $rounds (i32.lt_u (local.tee $round (i32.add (local.get $round) (i32.const 1))) (i32.const 10))))
    ;; The segment was dropped: reading one byte of it traps.
    (memory.init $pd (i32.const 0) (i32.const 0) (i32.const 1))))
