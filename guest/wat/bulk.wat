;; bulk: loops of bulk operations whose every iteration does milliseconds of
;; work in a few bytes of code. Bulk operations are charged fuel by their
;; length, so these loops are preempted, suspended and killed like any other.
;; fill and copy touch all 32 MiB of memory per iteration (table_copy.wat is
;; the same with a table).
(module
  (memory 512 512)
  (func (export "fill")
    (loop $forever
      (memory.fill (i32.const 0) (i32.const 1) (i32.const 33554432))
      (br $forever)))
  (func (export "copy")
    (loop $forever
      (memory.copy (i32.const 0) (i32.const 1) (i32.const 33554431))
      (br $forever))))
