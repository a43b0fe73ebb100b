;; table_copy: a loop of table.copy moving 65,535 entries per iteration: a
;; few bytes of code with milliseconds of work per iteration. Charged fuel by
;; length, it is preempted, suspended and killed like any other loop.
(module
  (table $t 65536 65536 funcref)
  (func (export "spin")
    (loop $forever
      (table.copy $t $t (i32.const 0) (i32.const 1) (i32.const 65535))
      (br $forever))))
