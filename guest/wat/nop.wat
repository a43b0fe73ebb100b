;; nop: the empty module (no imports, exports, memory or functions); runs nothing and halts with result 0.
(module)
