;; hex_escaped_binary(run): true when the command line (field 0 of the view) holds an
;; unbroken run of at least `run` escapes `\xHH`; captures how many escapes it holds and
;; its longest run.
;;
;; A hand-written predicate under Kestrel's Predicate ABI v1 (docs/abi.md). The host
;; owns the `view` region of memory: a 32-byte context block (u32 ABI version, field
;; count, argument count, capture count, then the offsets of the event's slots, the
;; capture slots, the payload area and its end), then the event's slots: the view's
;; fields, then the call's arguments, 16 bytes each (u8 tag, u32 length at +4, payload
;; at +8: an i64, or the u32 address of string bytes). The module imports nothing.
(module
  (memory (export "memory") 1)
  (global (export "view") i32 (i32.const 4096))
  (global (export "view_len") i32 (i32.const 61440))

  ;; What the last call found, for pred_capture.
  (global $escapes (mut i32) (i32.const 0))
  (global $longest (mut i32) (i32.const 0))

  ;; 1 if the byte is a hex digit.
  (func $hex (param $c i32) (result i32)
    (i32.or
      (i32.lt_u (i32.sub (local.get $c) (i32.const 48)) (i32.const 10))
      (i32.lt_u (i32.sub (i32.or (local.get $c) (i32.const 32)) (i32.const 97)) (i32.const 6))))

  ;; Ready if the host speaks ABI version 1 with a view of one field and one argument.
  (func (export "pred_init") (param $ctx i32) (result i32)
    (if (i32.ne (i32.load (local.get $ctx)) (i32.const 1)) (then (return (i32.const 1))))
    (if (i32.ne (i32.load offset=4 (local.get $ctx)) (i32.const 1)) (then (return (i32.const 1))))
    (if (i32.ne (i32.load offset=8 (local.get $ctx)) (i32.const 1)) (then (return (i32.const 1))))
    (i32.const 0))

  ;; 1 true, 0 false, 2 null.
  (func (export "pred_eval") (param $event i32) (param $ctx i32) (result i32)
    (local $at i32) (local $end i32) (local $run i32) (local $wanted i64)
    (global.set $escapes (i32.const 0))
    (global.set $longest (i32.const 0))
    ;; The argument (slot 1) must be a long (tag 2); null otherwise.
    (if (i32.ne (i32.load8_u offset=16 (local.get $event)) (i32.const 2)) (then (return (i32.const 2))))
    (local.set $wanted (i64.load offset=24 (local.get $event)))
    ;; No command line (tag 0), or not a string (tag 4): false.
    (if (i32.ne (i32.load8_u (local.get $event)) (i32.const 4)) (then (return (i32.const 0))))
    (local.set $at (i32.load offset=8 (local.get $event)))
    (local.set $end (i32.add (local.get $at) (i32.load offset=4 (local.get $event))))
    (block $done
      (loop $scan
        (br_if $done (i32.gt_u (i32.add (local.get $at) (i32.const 4)) (local.get $end)))
        (if (i32.and
              (i32.and
                (i32.eq (i32.load8_u (local.get $at)) (i32.const 92))             ;; \
                (i32.eq (i32.load8_u offset=1 (local.get $at)) (i32.const 120)))  ;; x
              (i32.and
                (call $hex (i32.load8_u offset=2 (local.get $at)))
                (call $hex (i32.load8_u offset=3 (local.get $at)))))
          (then
            (global.set $escapes (i32.add (global.get $escapes) (i32.const 1)))
            (local.set $run (i32.add (local.get $run) (i32.const 1)))
            (if (i32.gt_u (local.get $run) (global.get $longest)) (then (global.set $longest (local.get $run))))
            (local.set $at (i32.add (local.get $at) (i32.const 4))))
          (else
            (local.set $run (i32.const 0))
            (local.set $at (i32.add (local.get $at) (i32.const 1)))))
        (br $scan)))
    (i64.ge_s (i64.extend_i32_u (global.get $longest)) (local.get $wanted)))

  ;; Writes the two captures (longs, tag 2) into the capture slots; returns how many.
  (func (export "pred_capture") (param $event i32) (param $ctx i32) (result i32)
    (local $slots i32)
    (local.set $slots (i32.load offset=20 (local.get $ctx)))
    (i32.store8 (local.get $slots) (i32.const 2))
    (i64.store offset=8 (local.get $slots) (i64.extend_i32_u (global.get $escapes)))
    (i32.store8 offset=16 (local.get $slots) (i32.const 2))
    (i64.store offset=24 (local.get $slots) (i64.extend_i32_u (global.get $longest)))
    (i32.const 2)))
