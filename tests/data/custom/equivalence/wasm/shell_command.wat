;; shell_command(minimum, prefix): process.name (field 0) is "bash", process.args_count
;; (field 1) is at least `minimum` (argument 1), and process.command_line (field 2)
;; starts with `prefix` (argument 2). Slots are 16 bytes: u8 tag at +0 (2 long,
;; 4 string), u32 length at +4, payload at +8 (an i64, or the address of the bytes).
(module
  (memory (export "memory") 1)
  (global (export "view") i32 (i32.const 1024))
  (global (export "view_len") i32 (i32.const 64512))
  (data (i32.const 16) "bash")

  ;; 1 if the `len` bytes at `a` and `b` are equal.
  (func $same (param $a i32) (param $b i32) (param $len i32) (result i32)
    (block $differ
      (loop $next
        (if (i32.eqz (local.get $len)) (then (return (i32.const 1))))
        (br_if $differ (i32.ne (i32.load8_u (local.get $a)) (i32.load8_u (local.get $b))))
        (local.set $a (i32.add (local.get $a) (i32.const 1)))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (local.set $len (i32.sub (local.get $len) (i32.const 1)))
        (br $next)))
    (i32.const 0))

  (func (export "pred_eval") (param $event i32) (param $ctx i32) (result i32)
    (local $minimum i32) (local $prefix i32) (local $line i32)
    ;; Fields 0, 1, 2, then arguments 1 and 2 (slots 3 and 4).
    (local.set $minimum (i32.add (local.get $event) (i32.const 48)))
    (local.set $prefix (i32.add (local.get $event) (i32.const 64)))
    (local.set $line (i32.add (local.get $event) (i32.const 32)))
    ;; process.name == "bash"
    (if (i32.ne (i32.load8_u (local.get $event)) (i32.const 4)) (then (return (i32.const 0))))
    (if (i32.ne (i32.load offset=4 (local.get $event)) (i32.const 4)) (then (return (i32.const 0))))
    (if (i32.eqz (call $same (i32.load offset=8 (local.get $event)) (i32.const 16) (i32.const 4))) (then (return (i32.const 0))))
    ;; process.args_count >= minimum
    (if (i32.ne (i32.load8_u offset=16 (local.get $event)) (i32.const 2)) (then (return (i32.const 0))))
    (if (i32.ne (i32.load8_u (local.get $minimum)) (i32.const 2)) (then (return (i32.const 2))))
    (if (i64.lt_s (i64.load offset=24 (local.get $event)) (i64.load offset=8 (local.get $minimum))) (then (return (i32.const 0))))
    ;; startsWith(process.command_line, prefix)
    (if (i32.ne (i32.load8_u (local.get $line)) (i32.const 4)) (then (return (i32.const 0))))
    (if (i32.ne (i32.load8_u (local.get $prefix)) (i32.const 4)) (then (return (i32.const 2))))
    (if (i32.lt_u (i32.load offset=4 (local.get $line)) (i32.load offset=4 (local.get $prefix))) (then (return (i32.const 0))))
    (call $same
      (i32.load offset=8 (local.get $line))
      (i32.load offset=8 (local.get $prefix))
      (i32.load offset=4 (local.get $prefix)))))
