;; huge_memory: declares an initial memory of 40000 pages (about 2.4 GiB), beyond Gate's 32767-page limit; refused at load time.
(module
  (memory 40000)
  (func (export "main")))
