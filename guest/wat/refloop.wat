;; refloop: an endless loop in a function that holds a reference (a funcref
;; local). Such a function cannot be unwound, so it cannot be suspended in
;; the middle; it is killed when asked, or when it keeps its thread past the
;; preemption limit.
(module
  (func (export "spin") (local funcref)
    (loop $forever
      (br $forever))))
