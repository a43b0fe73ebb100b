;; grow: export grow calls memory.grow 1 until it returns -1, then logs "grow: <pages>\n" (the page count reached) to the debug log.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory 1)
  (data (i32.const 64) "grow: ")

  (func (export "grow")
    (local $pages i32)
    (local $end i32)
    (local $pos i32)

    ;; The memory bomb: one page at a time until the host says no.
    (block $done
      (loop $more
        (br_if $done (i32.eq (memory.grow (i32.const 1)) (i32.const -1)))
        (br $more)))
    (local.set $pages (memory.size))

    ;; Format the page count in decimal just before offset 100, with "\n"
    ;; at 100: digits are written backwards from 99.
    (i32.store8 (i32.const 100) (i32.const 10))
    (local.set $pos (i32.const 100))
    (loop $digit
      (local.set $pos (i32.sub (local.get $pos) (i32.const 1)))
      (i32.store8 (local.get $pos)
        (i32.add (i32.const 48) (i32.rem_u (local.get $pages) (i32.const 10))))
      (local.set $pages (i32.div_u (local.get $pages) (i32.const 10)))
      (br_if $digit (local.get $pages)))

    ;; Two iovecs at 16 (address 0 would be a null pointer to fd_write): "grow: " and the digits with the newline.
    (i32.store (i32.const 16) (i32.const 64))
    (i32.store (i32.const 20) (i32.const 6))
    (i32.store (i32.const 24) (local.get $pos))
    (i32.store (i32.const 28) (i32.sub (i32.const 101) (local.get $pos)))
    (drop (call $fd_write (i32.const 2) (i32.const 16) (i32.const 2) (i32.const 32)))))
