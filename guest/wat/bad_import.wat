;; bad_import: imports env.foo, which no Gate namespace provides; the host must refuse the module at load time.
(module
  (import "env" "foo" (func $foo))
  (func (export "main")
    call $foo))
