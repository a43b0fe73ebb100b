;; entry_i32: entry function main returns i32 42; the returned value is ignored, the instance halts with result 0.
(module
  (func (export "main") (result i32)
    (i32.const 42)))
