;; table_memory: 32 MiB of memory and a table of 1,000,000 entries (about
;; 32 MiB of V8 heap per instance): the server counts both against its
;; memory limits. spin loops forever.
(module
  (memory 512 512)
  (table 1000000 1000000 funcref)
  (func (export "spin")
    (loop $forever
      (br $forever))))
