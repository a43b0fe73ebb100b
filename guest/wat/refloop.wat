;; refloop: an endless loop in a function that holds a reference (a funcref
;; local): its frame saves the reference when it is suspended, and it is
;; preempted, suspended and killed like any other loop.
(module
  (func (export "spin") (local funcref)
    (loop $forever
      (br $forever))))
