;; loop: export spin loops forever without calling any import; only a suspend or kill request can stop it.
(module
  (func (export "spin")
    (loop $forever
      (br $forever))))
