;; The in-guest library of every Kestrel predicate module (docs/abi.md).
;;
;; eqlc's build script assembles this file; `emit::wasm` copies its types, imports and
;; functions, in this order and at these indices, to the front of each module it
;; generates, then appends the generated predicates. The memory and globals declared here
;; are placeholders: the generated module declares its own, with the same indices.
;;
;; Conventions:
;; - a value is a pointer to a 16-byte slot: tag (i32), length (i32), payload (i64);
;;   tags: 0 null, 1 bool, 2 long, 3 double, 4 string, 5 ip, 6 array, 7 object;
;; - address 0 holds a null slot (the first 64 bytes of memory stay zero);
;; - a truth value is three-valued: 0 false, 1 true, 2 null;
;; - arrays match when any element matches (nulls skipped, nesting flattened); an array
;;   with no other element is null, like a missing field.
;; The reference interpreter (eqlc::interp) defines these semantics; a property test
;; compares the two.
(module
  (import "kestrel" "regex" (func $host_regex (param i32 i32 i32) (result i32)))
  (import "kestrel" "cidr" (func $host_cidr (param i32 i32 i32) (result i32)))
  (import "kestrel" "call" (func $host_call (param i32 i32 i32 i32)))
  (import "kestrel" "predicate" (func $host_predicate (param i32 i32 i32 i32) (result i32)))

  (memory 1)
  (global $heap_top (mut i32) (i32.const 0))
  (global $heap_start i32 (i32.const 0))
  (global $heap_end i32 (i32.const 0))
  (global $args i32 (i32.const 0))
  (global $out i32 (i32.const 0))
  ;; Start of the current event's slots in a batch; generated code adds slot offsets to it.
  (global $event_base (mut i32) (i32.const 0))

  ;; ------------------------------------------------------------------------------
  ;; Allocation and slots

  ;; Bumps the heap by `n` bytes (rounded up to 8); traps when the heap is full.
  (func $alloc (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $heap_top))
    (if (i32.gt_u (local.get $n) (i32.sub (global.get $heap_end) (local.get $p)))
      (then (unreachable)))
    (global.set $heap_top (i32.and (i32.add (i32.add (local.get $p) (local.get $n)) (i32.const 7)) (i32.const -8)))
    (local.get $p))

  (func $new_slot (param $tag i32) (param $len i32) (param $payload i64) (result i32)
    (local $s i32)
    (local.set $s (call $alloc (i32.const 16)))
    (i32.store (local.get $s) (local.get $tag))
    (i32.store offset=4 (local.get $s) (local.get $len))
    (i64.store offset=8 (local.get $s) (local.get $payload))
    (local.get $s))

  (func $bool_slot (param $v i32) (result i32)
    (if (i32.eq (local.get $v) (i32.const 2)) (then (return (i32.const 0))))
    (call $new_slot (i32.const 1) (i32.const 0) (i64.extend_i32_u (local.get $v))))

  (func $long_slot (param $v i64) (result i32)
    (call $new_slot (i32.const 2) (i32.const 0) (local.get $v)))

  (func $double_slot (param $v f64) (result i32)
    (call $new_slot (i32.const 3) (i32.const 0) (i64.reinterpret_f64 (local.get $v))))

  (func $tag (param $s i32) (result i32) (i32.load8_u (local.get $s)))
  (func $len (param $s i32) (result i32) (i32.load offset=4 (local.get $s)))
  (func $ptr (param $s i32) (result i32) (i32.load offset=8 (local.get $s)))

  ;; Copies slot `s` into argument `i` of a host call.
  (func $set_arg (param $i i32) (param $s i32)
    (local $a i32)
    (local.set $a (i32.add (global.get $args) (i32.shl (local.get $i) (i32.const 4))))
    (i64.store (local.get $a) (i64.load (local.get $s)))
    (i64.store offset=8 (local.get $a) (i64.load offset=8 (local.get $s))))

  ;; Calls host function `f` on the arguments set with $set_arg; returns a copy of the
  ;; out slot (string payloads it points at stay in the heap).
  (func $call_host (param $f i32) (param $argc i32) (param $flags i32) (result i32)
    (local $s i32)
    (call $host_call (local.get $f) (global.get $args) (local.get $argc) (local.get $flags))
    (local.set $s (call $alloc (i32.const 16)))
    (i64.store (local.get $s) (i64.load (global.get $out)))
    (i64.store offset=8 (local.get $s) (i64.load offset=8 (global.get $out)))
    (local.get $s))

  ;; Hand-written predicate $p on the current event, with the first $argc argument
  ;; slots: a truth value.
  (func $call_predicate (param $p i32) (param $argc i32) (result i32)
    (call $host_predicate (local.get $p) (global.get $event_base) (global.get $args) (local.get $argc)))

  ;; ------------------------------------------------------------------------------
  ;; Bytes and strings

  (func $mem_eq (param $a i32) (param $b i32) (param $n i32) (result i32)
    (block $done
      (loop $words
        (br_if $done (i32.lt_u (local.get $n) (i32.const 8)))
        (if (i64.ne (i64.load (local.get $a)) (i64.load (local.get $b))) (then (return (i32.const 0))))
        (local.set $a (i32.add (local.get $a) (i32.const 8)))
        (local.set $b (i32.add (local.get $b) (i32.const 8)))
        (local.set $n (i32.sub (local.get $n) (i32.const 8)))
        (br $words)))
    (block $end
      (loop $bytes
        (br_if $end (i32.eqz (local.get $n)))
        (if (i32.ne (i32.load8_u (local.get $a)) (i32.load8_u (local.get $b))) (then (return (i32.const 0))))
        (local.set $a (i32.add (local.get $a) (i32.const 1)))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $bytes)))
    (i32.const 1))

  ;; Three-way byte order of two strings: -1, 0 or 1.
  (func $mem_cmp (param $a i32) (param $an i32) (param $b i32) (param $bn i32) (result i32)
    (local $n i32) (local $i i32) (local $x i32) (local $y i32)
    (local.set $n (select (local.get $an) (local.get $bn) (i32.lt_u (local.get $an) (local.get $bn))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $x (i32.load8_u (i32.add (local.get $a) (local.get $i))))
        (local.set $y (i32.load8_u (i32.add (local.get $b) (local.get $i))))
        (if (i32.ne (local.get $x) (local.get $y))
          (then (return (select (i32.const -1) (i32.const 1) (i32.lt_u (local.get $x) (local.get $y))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (if (i32.lt_u (local.get $an) (local.get $bn)) (then (return (i32.const -1))))
    (if (i32.gt_u (local.get $an) (local.get $bn)) (then (return (i32.const 1))))
    (i32.const 0))

  ;; Bytes in the UTF-8 sequence that starts with byte `b`.
  (func $utf8_width (param $b i32) (result i32)
    (if (i32.lt_u (local.get $b) (i32.const 0x80)) (then (return (i32.const 1))))
    (if (i32.lt_u (local.get $b) (i32.const 0xE0)) (then (return (i32.const 2))))
    (if (i32.lt_u (local.get $b) (i32.const 0xF0)) (then (return (i32.const 3))))
    (i32.const 4))

  ;; Characters (Unicode scalar values) in a UTF-8 string.
  (func $utf8_count (param $p i32) (param $n i32) (result i32)
    (local $i i32) (local $count i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        ;; Count every byte that is not a continuation byte (10xxxxxx).
        (if (i32.ne (i32.and (i32.load8_u (i32.add (local.get $p) (local.get $i))) (i32.const 0xC0)) (i32.const 0x80))
          (then (local.set $count (i32.add (local.get $count) (i32.const 1)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.get $count))

  ;; A string operation against a literal: 0 equals, 1 starts with, 2 ends with,
  ;; 3 contains, 4 equals (a wildcard without wildcards), 5 contains with both strings
  ;; non-empty (Elasticsearch `stringContains`). Returns 0 or 1.
  (func $str_op (param $p i32) (param $n i32) (param $l i32) (param $ln i32) (param $op i32) (result i32)
    (local $i i32) (local $last i32) (local $first i32)
    (block $contains
      (block $ends
        (block $starts
          (block $equals
            (block $nonempty
              (br_table $equals $starts $ends $contains $equals $nonempty (local.get $op)))
            ;; contains, both non-empty
            (if (i32.or (i32.eqz (local.get $n)) (i32.eqz (local.get $ln))) (then (return (i32.const 0))))
            (br $contains))
          ;; equals
          (if (i32.ne (local.get $n) (local.get $ln)) (then (return (i32.const 0))))
          (return (call $mem_eq (local.get $p) (local.get $l) (local.get $n))))
        ;; starts with
        (if (i32.lt_u (local.get $n) (local.get $ln)) (then (return (i32.const 0))))
        (return (call $mem_eq (local.get $p) (local.get $l) (local.get $ln))))
      ;; ends with
      (if (i32.lt_u (local.get $n) (local.get $ln)) (then (return (i32.const 0))))
      (return (call $mem_eq (i32.add (local.get $p) (i32.sub (local.get $n) (local.get $ln))) (local.get $l) (local.get $ln))))
    ;; contains
    (if (i32.lt_u (local.get $n) (local.get $ln)) (then (return (i32.const 0))))
    (if (i32.eqz (local.get $ln)) (then (return (i32.const 1))))
    (local.set $last (i32.sub (local.get $n) (local.get $ln)))
    (local.set $first (i32.load8_u (local.get $l)))
    (block $done
      (loop $next
        (br_if $done (i32.gt_u (local.get $i) (local.get $last)))
        (if (i32.eq (i32.load8_u (i32.add (local.get $p) (local.get $i))) (local.get $first))
          (then
            (if (call $mem_eq (i32.add (local.get $p) (local.get $i)) (local.get $l) (local.get $ln))
              (then (return (i32.const 1))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.const 0))

  ;; The text of an address, as a string slot (the host writes it: `string()`).
  (func $ip_text (param $s i32) (result i32)
    (call $set_arg (i32.const 0) (local.get $s))
    (call $call_host (i32.const 6) (i32.const 1) (i32.const 0)))

  ;; $str_op on a value: strings match themselves, addresses their text (or, for `==`,
  ;; the address the literal spells), arrays any element; anything else is null.
  (func $slot_str_op (param $s i32) (param $l i32) (param $ln i32) (param $op i32) (result i32)
    (if (i32.eq (i32.load8_u (local.get $s)) (i32.const 4))
      (then (return (call $str_op (i32.load offset=8 (local.get $s)) (i32.load offset=4 (local.get $s)) (local.get $l) (local.get $ln) (local.get $op)))))
    (call $finish (call $any (local.get $s) (i32.const 0) (local.get $l) (local.get $ln) (local.get $op))))

  ;; $str_op with a value on the right (`startsWith(a, b)` for two fields): the right
  ;; side must be a string or an address (read as its text); anything else is null.
  (func $slot_str_op2 (param $a i32) (param $b i32) (param $op i32) (result i32)
    (local $tag i32)
    (local.set $tag (i32.load8_u (local.get $b)))
    (if (i32.eq (local.get $tag) (i32.const 5)) (then (local.set $b (call $ip_text (local.get $b))) (local.set $tag (i32.const 4))))
    (if (i32.ne (local.get $tag) (i32.const 4)) (then (return (i32.const 2))))
    (call $slot_str_op (local.get $a) (i32.load offset=8 (local.get $b)) (i32.load offset=4 (local.get $b)) (local.get $op)))

  ;; Membership of a string in a sorted table of (offset u32, length u32) entries,
  ;; ordered by length, then bytes. Returns 0 or 1.
  (func $str_in_table (param $p i32) (param $n i32) (param $table i32) (param $count i32) (result i32)
    (local $lo i32) (local $hi i32) (local $mid i32) (local $e i32) (local $en i32) (local $c i32)
    (local.set $hi (local.get $count))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $lo) (local.get $hi)))
        (local.set $mid (i32.shr_u (i32.add (local.get $lo) (local.get $hi)) (i32.const 1)))
        (local.set $e (i32.add (local.get $table) (i32.shl (local.get $mid) (i32.const 3))))
        (local.set $en (i32.load offset=4 (local.get $e)))
        (local.set $c
          (if (result i32) (i32.ne (local.get $n) (local.get $en))
            (then (select (i32.const -1) (i32.const 1) (i32.lt_u (local.get $n) (local.get $en))))
            (else (call $mem_cmp (local.get $p) (local.get $n) (i32.load (local.get $e)) (local.get $en)))))
        (if (i32.eqz (local.get $c)) (then (return (i32.const 1))))
        (if (i32.lt_s (local.get $c) (i32.const 0))
          (then (local.set $hi (local.get $mid)))
          (else (local.set $lo (i32.add (local.get $mid) (i32.const 1)))))
        (br $next)))
    (i32.const 0))

  ;; Membership of an address in a string table: some entry spells the same address.
  (func $ip_in_table (param $s i32) (param $table i32) (param $count i32) (result i32)
    (local $e i32)
    (block $done
      (loop $next
        (br_if $done (i32.eqz (local.get $count)))
        (local.set $e (local.get $table))
        (if (i32.eq (call $ip_eq_str (local.get $s) (i32.load (local.get $e)) (i32.load offset=4 (local.get $e))) (i32.const 1))
          (then (return (i32.const 1))))
        (local.set $table (i32.add (local.get $table) (i32.const 8)))
        (local.set $count (i32.sub (local.get $count) (i32.const 1)))
        (br $next)))
    (i32.const 0))

  ;; `in` a list of strings: a null subject is null; otherwise true or false (a value of
  ;; another type is in no list). Arrays: any element.
  (func $slot_in_table (param $s i32) (param $table i32) (param $count i32) (result i32)
    (if (i32.eq (i32.load8_u (local.get $s)) (i32.const 4))
      (then (return (call $str_in_table (i32.load offset=8 (local.get $s)) (i32.load offset=4 (local.get $s)) (local.get $table) (local.get $count)))))
    (call $finish (call $any (local.get $s) (i32.const 1) (local.get $table) (local.get $count) (i32.const 0))))

  ;; `in` a list of literal slots (`count` u32 addresses at `table`): as $slot_in_table,
  ;; with `==` between the subject and each value.
  (func $slot_in_slots (param $s i32) (param $table i32) (param $count i32) (result i32)
    (call $finish (call $any (local.get $s) (i32.const 2) (local.get $table) (local.get $count) (i32.const 0))))

  ;; Whether some value of a slot table equals `s` (not an array, not null): 0 or 1.
  (func $in_slots (param $s i32) (param $table i32) (param $count i32) (result i32)
    (block $done
      (loop $next
        (br_if $done (i32.eqz (local.get $count)))
        (if (i32.eq (call $cmp_scalar (local.get $s) (i32.load (local.get $table)) (i32.const 0)) (i32.const 1))
          (then (return (i32.const 1))))
        (local.set $table (i32.add (local.get $table) (i32.const 4)))
        (local.set $count (i32.sub (local.get $count) (i32.const 1)))
        (br $next)))
    (i32.const 0))

  ;; A general wildcard pattern: `count` pieces of 12 bytes (kind u32, offset u32,
  ;; length u32); kind 0 literal, 1 `*` (any run), 2 `?` (one character).
  (func $wild (param $p i32) (param $n i32) (param $pieces i32) (param $count i32) (result i32)
    (local $pi i32) (local $ci i32) (local $star_pi i32) (local $star_ci i32) (local $entry i32) (local $kind i32) (local $len i32)
    (local.set $star_pi (i32.const -1))
    (loop $step
      (block $backtrack
        (if (i32.lt_u (local.get $pi) (local.get $count))
          (then
            (local.set $entry (i32.add (local.get $pieces) (i32.mul (local.get $pi) (i32.const 12))))
            (local.set $kind (i32.load (local.get $entry)))
            (if (i32.eq (local.get $kind) (i32.const 1))
              (then
                (local.set $star_pi (local.get $pi))
                (local.set $star_ci (local.get $ci))
                (local.set $pi (i32.add (local.get $pi) (i32.const 1)))
                (br $step)))
            (if (i32.eq (local.get $kind) (i32.const 2))
              (then
                (br_if $backtrack (i32.ge_u (local.get $ci) (local.get $n)))
                (local.set $ci (i32.add (local.get $ci) (call $utf8_width (i32.load8_u (i32.add (local.get $p) (local.get $ci))))))
                (local.set $pi (i32.add (local.get $pi) (i32.const 1)))
                (br $step)))
            (local.set $len (i32.load offset=8 (local.get $entry)))
            (br_if $backtrack (i32.gt_u (local.get $len) (i32.sub (local.get $n) (local.get $ci))))
            (br_if $backtrack (i32.eqz (call $mem_eq (i32.add (local.get $p) (local.get $ci)) (i32.load offset=4 (local.get $entry)) (local.get $len))))
            (local.set $ci (i32.add (local.get $ci) (local.get $len)))
            (local.set $pi (i32.add (local.get $pi) (i32.const 1)))
            (br $step))
          (else
            (if (i32.ge_u (local.get $ci) (local.get $n)) (then (return (i32.const 1)))))))
      ;; Let the last `*` take one more character and try again.
      (if (i32.lt_s (local.get $star_pi) (i32.const 0)) (then (return (i32.const 0))))
      (if (i32.ge_u (local.get $star_ci) (local.get $n)) (then (return (i32.const 0))))
      (local.set $star_ci (i32.add (local.get $star_ci) (call $utf8_width (i32.load8_u (i32.add (local.get $p) (local.get $star_ci))))))
      (local.set $pi (i32.add (local.get $star_pi) (i32.const 1)))
      (local.set $ci (local.get $star_ci))
      (br $step))
    (i32.const 0))

  (func $slot_wild (param $s i32) (param $pieces i32) (param $count i32) (result i32)
    (if (i32.eq (i32.load8_u (local.get $s)) (i32.const 4))
      (then (return (call $wild (i32.load offset=8 (local.get $s)) (i32.load offset=4 (local.get $s)) (local.get $pieces) (local.get $count)))))
    (call $finish (call $any (local.get $s) (i32.const 3) (local.get $pieces) (local.get $count) (i32.const 0))))

  ;; A regular expression of the PATTERNS table against a value.
  (func $slot_regex (param $s i32) (param $id i32) (result i32)
    (if (i32.eq (i32.load8_u (local.get $s)) (i32.const 4))
      (then (return (call $host_regex (local.get $id) (i32.load offset=8 (local.get $s)) (i32.load offset=4 (local.get $s))))))
    (call $finish (call $any (local.get $s) (i32.const 4) (local.get $id) (i32.const 0) (i32.const 0))))

  (func $slot_cidr (param $s i32) (param $set i32) (param $python i32) (result i32)
    (call $host_cidr (local.get $set) (local.get $s) (local.get $python)))

  ;; ------------------------------------------------------------------------------
  ;; The any-element rule (docs/semantics.md)

  ;; Applies test `kind` (with arguments x, y, z; see $test) to a value, or to each
  ;; element of an array (nested arrays flattened, null elements skipped), and combines
  ;; the answers as `or`: 1 if any is true, else 2 if any is null, else 0; 3 when there
  ;; is nothing to test (null, or an array of nulls), which $finish turns into null.
  (func $any (param $s i32) (param $kind i32) (param $x i32) (param $y i32) (param $z i32) (result i32)
    (local $tag i32) (local $n i32) (local $e i32) (local $r i32) (local $v i32)
    (local.set $tag (i32.load8_u (local.get $s)))
    (if (i32.eqz (local.get $tag)) (then (return (i32.const 3))))
    (if (i32.ne (local.get $tag) (i32.const 6))
      (then (return (call $test (local.get $s) (local.get $kind) (local.get $x) (local.get $y) (local.get $z)))))
    (local.set $n (i32.load offset=4 (local.get $s)))
    (local.set $e (i32.load offset=8 (local.get $s)))
    (local.set $r (i32.const 3))
    (block $done
      (loop $next
        (br_if $done (i32.eqz (local.get $n)))
        (local.set $v (call $any (local.get $e) (local.get $kind) (local.get $x) (local.get $y) (local.get $z)))
        (if (i32.eq (local.get $v) (i32.const 1)) (then (return (i32.const 1))))
        (if (i32.eq (local.get $v) (i32.const 2)) (then (local.set $r (i32.const 2))))
        (if (i32.and (i32.eqz (local.get $v)) (i32.eq (local.get $r) (i32.const 3))) (then (local.set $r (i32.const 0))))
        (local.set $e (i32.add (local.get $e) (i32.const 16)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $next)))
    (local.get $r))

  ;; Nothing to test is null.
  (func $finish (param $v i32) (result i32)
    (select (i32.const 2) (local.get $v) (i32.eq (local.get $v) (i32.const 3))))

  ;; One test of $any on a value that is neither null nor an array:
  ;; 0 $str_op (x literal, y its length, z the op); 1 `in` a string table (x, y count);
  ;; 2 `in` a slot table (x, y count); 3 a general wildcard (x pieces, y count);
  ;; 4 a regex (x its id); 5 the truth of a value; 6 the left side of a comparison,
  ;; against every element of the right side x (y the op); 7 the right side, against
  ;; the left element x (y the op).
  (func $test (param $s i32) (param $kind i32) (param $x i32) (param $y i32) (param $z i32) (result i32)
    (local $tag i32)
    (local.set $tag (i32.load8_u (local.get $s)))
    (block $right
      (block $left
        (block $truth
          (block $regex
            (block $wild
              (block $slots
                (block $table
                  (block $str
                    (br_table $str $table $slots $wild $regex $truth $left $right (local.get $kind)))
                  ;; 0: a string operation
                  (if (i32.eq (local.get $tag) (i32.const 5))
                    (then
                      (if (i32.eqz (local.get $z)) (then (return (call $ip_eq_str (local.get $s) (local.get $x) (local.get $y)))))
                      (local.set $s (call $ip_text (local.get $s)))
                      (local.set $tag (i32.const 4))))
                  (if (i32.ne (local.get $tag) (i32.const 4)) (then (return (i32.const 2))))
                  (return (call $str_op (i32.load offset=8 (local.get $s)) (i32.load offset=4 (local.get $s)) (local.get $x) (local.get $y) (local.get $z))))
                ;; 1: in a string table
                (if (i32.eq (local.get $tag) (i32.const 4))
                  (then (return (call $str_in_table (i32.load offset=8 (local.get $s)) (i32.load offset=4 (local.get $s)) (local.get $x) (local.get $y)))))
                (if (i32.eq (local.get $tag) (i32.const 5)) (then (return (call $ip_in_table (local.get $s) (local.get $x) (local.get $y)))))
                (return (i32.const 0)))
              ;; 2: in a slot table
              (return (call $in_slots (local.get $s) (local.get $x) (local.get $y))))
            ;; 3: a general wildcard
            (if (i32.eq (local.get $tag) (i32.const 5)) (then (local.set $s (call $ip_text (local.get $s))) (local.set $tag (i32.const 4))))
            (if (i32.ne (local.get $tag) (i32.const 4)) (then (return (i32.const 2))))
            (return (call $wild (i32.load offset=8 (local.get $s)) (i32.load offset=4 (local.get $s)) (local.get $x) (local.get $y))))
          ;; 4: a regex
          (if (i32.eq (local.get $tag) (i32.const 5)) (then (local.set $s (call $ip_text (local.get $s))) (local.set $tag (i32.const 4))))
          (if (i32.ne (local.get $tag) (i32.const 4)) (then (return (i32.const 2))))
          (return (call $host_regex (local.get $x) (i32.load offset=8 (local.get $s)) (i32.load offset=4 (local.get $s)))))
        ;; 5: truth
        (if (i32.eq (local.get $tag) (i32.const 1)) (then (return (i32.wrap_i64 (i64.load offset=8 (local.get $s))))))
        (return (call $truthy (local.get $s))))
      ;; 6: the left side of a comparison
      (return (call $any (local.get $x) (i32.const 7) (local.get $s) (local.get $y) (i32.const 0))))
    ;; 7: the right side of a comparison
    (call $cmp_scalar (local.get $x) (local.get $s) (local.get $y)))

  ;; ------------------------------------------------------------------------------
  ;; Addresses: parsed as Rust's `IpAddr::from_str` parses them, compared as 16 bytes
  ;; with IPv4 mapped into IPv6 (`::ffff:a.b.c.d`).

  (func $hex_digit (param $c i32) (result i32)
    (if (i32.lt_u (i32.sub (local.get $c) (i32.const 48)) (i32.const 10)) (then (return (i32.sub (local.get $c) (i32.const 48)))))
    (local.set $c (i32.or (local.get $c) (i32.const 32)))
    (if (i32.lt_u (i32.sub (local.get $c) (i32.const 97)) (i32.const 6)) (then (return (i32.sub (local.get $c) (i32.const 87)))))
    (i32.const -1))

  ;; Reads `a.b.c.d` at `p` (decimal octets of up to 3 digits, no leading zeros) and on
  ;; success stores its 4 bytes at `out`. Returns the position after it, or -1.
  (func $read_v4 (param $p i32) (param $end i32) (param $out i32) (result i32)
    (local $i i32) (local $v i32) (local $digits i32) (local $first i32) (local $d i32) (local $bytes i32)
    (loop $octet
      (if (local.get $i)
        (then
          (if (i32.ge_u (local.get $p) (local.get $end)) (then (return (i32.const -1))))
          (if (i32.ne (i32.load8_u (local.get $p)) (i32.const 46)) (then (return (i32.const -1))))
          (local.set $p (i32.add (local.get $p) (i32.const 1)))))
      (local.set $v (i32.const 0))
      (local.set $digits (i32.const 0))
      (block $done
        (loop $digit
          (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
          (local.set $d (i32.sub (i32.load8_u (local.get $p)) (i32.const 48)))
          (br_if $done (i32.ge_u (local.get $d) (i32.const 10)))
          (if (i32.eqz (local.get $digits)) (then (local.set $first (local.get $d))))
          (local.set $digits (i32.add (local.get $digits) (i32.const 1)))
          (if (i32.gt_u (local.get $digits) (i32.const 3)) (then (return (i32.const -1))))
          (local.set $v (i32.add (i32.mul (local.get $v) (i32.const 10)) (local.get $d)))
          (local.set $p (i32.add (local.get $p) (i32.const 1)))
          (br $digit)))
      (if (i32.eqz (local.get $digits)) (then (return (i32.const -1))))
      (if (i32.gt_u (local.get $v) (i32.const 255)) (then (return (i32.const -1))))
      (if (i32.and (i32.eqz (local.get $first)) (i32.gt_u (local.get $digits) (i32.const 1))) (then (return (i32.const -1))))
      (local.set $bytes (i32.or (local.get $bytes) (i32.shl (local.get $v) (i32.shl (local.get $i) (i32.const 3)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $octet (i32.lt_u (local.get $i) (i32.const 4))))
    (i32.store (local.get $out) (local.get $bytes))
    (local.get $p))

  ;; Reads up to `limit` colon-separated groups of 1 to 4 hex digits into `out` (2
  ;; bytes each, big-endian); an IPv4 address may stand for the last two. Returns the
  ;; position after them, how many groups were read, and whether an IPv4 address ended them.
  (func $read_groups (param $p i32) (param $end i32) (param $out i32) (param $limit i32) (result i32 i32 i32)
    (local $i i32) (local $q i32) (local $v i32) (local $digits i32) (local $d i32) (local $after i32)
    (block $done
      (loop $group
        (br_if $done (i32.ge_u (local.get $i) (local.get $limit)))
        (local.set $q (local.get $p))
        (if (local.get $i)
          (then
            (br_if $done (i32.ge_u (local.get $q) (local.get $end)))
            (br_if $done (i32.ne (i32.load8_u (local.get $q)) (i32.const 58)))
            (local.set $q (i32.add (local.get $q) (i32.const 1)))))
        (if (i32.lt_u (i32.add (local.get $i) (i32.const 1)) (local.get $limit))
          (then
            (local.set $after (call $read_v4 (local.get $q) (local.get $end) (i32.add (local.get $out) (i32.shl (local.get $i) (i32.const 1)))))
            (if (i32.ge_s (local.get $after) (i32.const 0))
              (then (return (local.get $after) (i32.add (local.get $i) (i32.const 2)) (i32.const 1))))))
        (local.set $v (i32.const 0))
        (local.set $digits (i32.const 0))
        (block $hex_done
          (loop $hex
            (br_if $hex_done (i32.ge_u (local.get $q) (local.get $end)))
            (local.set $d (call $hex_digit (i32.load8_u (local.get $q))))
            (br_if $hex_done (i32.lt_s (local.get $d) (i32.const 0)))
            (local.set $digits (i32.add (local.get $digits) (i32.const 1)))
            (br_if $done (i32.gt_u (local.get $digits) (i32.const 4)))
            (local.set $v (i32.or (i32.shl (local.get $v) (i32.const 4)) (local.get $d)))
            (local.set $q (i32.add (local.get $q) (i32.const 1)))
            (br $hex)))
        (br_if $done (i32.eqz (local.get $digits)))
        (i32.store8 (i32.add (local.get $out) (i32.shl (local.get $i) (i32.const 1))) (i32.shr_u (local.get $v) (i32.const 8)))
        (i32.store8 offset=1 (i32.add (local.get $out) (i32.shl (local.get $i) (i32.const 1))) (local.get $v))
        (local.set $p (local.get $q))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $group)))
    (local.get $p) (local.get $i) (i32.const 0))

  ;; Parses the `n` bytes at `p` as an address into 16 bytes at `out`, mapped into IPv6.
  ;; Returns 1, or 0 if the text is not an address.
  (func $parse_ip (param $p i32) (param $n i32) (param $out i32) (result i32)
    (local $end i32) (local $q i32) (local $head i32) (local $v4 i32) (local $tail i32) (local $buf i32)
    (local.set $end (i32.add (local.get $p) (local.get $n)))
    (memory.fill (local.get $out) (i32.const 0) (i32.const 16))
    (local.set $q (call $read_v4 (local.get $p) (local.get $end) (i32.add (local.get $out) (i32.const 12))))
    (if (i32.ge_s (local.get $q) (i32.const 0))
      (then
        (if (i32.ne (local.get $q) (local.get $end)) (then (return (i32.const 0))))
        (i32.store16 offset=10 (local.get $out) (i32.const 0xFFFF))
        (return (i32.const 1))))
    (memory.fill (local.get $out) (i32.const 0) (i32.const 16))
    (call $read_groups (local.get $p) (local.get $end) (local.get $out) (i32.const 8))
    (local.set $v4)
    (local.set $head)
    (local.set $q)
    (if (i32.eq (local.get $head) (i32.const 8)) (then (return (i32.eq (local.get $q) (local.get $end)))))
    (if (local.get $v4) (then (return (i32.const 0))))
    ;; `::`, standing for at least one group of zeros, then the rest.
    (if (i32.gt_u (i32.add (local.get $q) (i32.const 2)) (local.get $end)) (then (return (i32.const 0))))
    (if (i32.ne (i32.load16_u (local.get $q)) (i32.const 0x3A3A)) (then (return (i32.const 0))))
    (local.set $buf (call $alloc (i32.const 16)))
    (call $read_groups (i32.add (local.get $q) (i32.const 2)) (local.get $end) (local.get $buf) (i32.sub (i32.const 7) (local.get $head)))
    (drop)
    (local.set $tail)
    (local.set $q)
    (memory.copy (i32.sub (i32.add (local.get $out) (i32.const 16)) (i32.shl (local.get $tail) (i32.const 1))) (local.get $buf) (i32.shl (local.get $tail) (i32.const 1)))
    (i32.eq (local.get $q) (local.get $end)))

  ;; The 16-byte form of an address slot (4 bytes are IPv4, mapped).
  (func $ip16 (param $s i32) (result i32)
    (local $out i32)
    (if (i32.eq (i32.load offset=4 (local.get $s)) (i32.const 16)) (then (return (i32.load offset=8 (local.get $s)))))
    (local.set $out (call $alloc (i32.const 16)))
    (i64.store (local.get $out) (i64.const 0))
    (i32.store offset=8 (local.get $out) (i32.const 0xFFFF0000))
    (i32.store offset=12 (local.get $out) (i32.load (i32.load offset=8 (local.get $s))))
    (local.get $out))

  ;; Whether an address slot and the address spelt by `n` bytes at `p` are one address:
  ;; 0 or 1, or 2 when the text is not an address.
  (func $ip_eq_str (param $s i32) (param $p i32) (param $n i32) (result i32)
    (local $buf i32)
    (local.set $buf (call $alloc (i32.const 16)))
    (if (i32.eqz (call $parse_ip (local.get $p) (local.get $n) (local.get $buf))) (then (return (i32.const 2))))
    (call $mem_eq (call $ip16 (local.get $s)) (local.get $buf) (i32.const 16)))

  ;; The 16-byte form of an address or of a string spelling one; 0 for anything else.
  (func $ip_of (param $s i32) (result i32)
    (local $buf i32)
    (if (i32.eq (i32.load8_u (local.get $s)) (i32.const 5)) (then (return (call $ip16 (local.get $s)))))
    (local.set $buf (call $alloc (i32.const 16)))
    (if (call $parse_ip (i32.load offset=8 (local.get $s)) (i32.load offset=4 (local.get $s)) (local.get $buf)) (then (return (local.get $buf))))
    (i32.const 0))

  ;; ------------------------------------------------------------------------------
  ;; Comparison, truth, arithmetic

  ;; Applies a comparison operator (0 ==, 1 !=, 2 <, 3 <=, 4 >, 5 >=) to an order (-1, 0, 1).
  (func $apply_order (param $op i32) (param $c i32) (result i32)
    (block $ge
      (block $gt
        (block $le
          (block $lt
            (block $ne
              (block $eq
                (br_table $eq $ne $lt $le $gt $ge (local.get $op)))
              (return (i32.eqz (local.get $c))))
            (return (i32.ne (local.get $c) (i32.const 0))))
          (return (i32.lt_s (local.get $c) (i32.const 0))))
        (return (i32.le_s (local.get $c) (i32.const 0))))
      (return (i32.gt_s (local.get $c) (i32.const 0))))
    (i32.ge_s (local.get $c) (i32.const 0)))

  ;; Compares two values with a comparison operator; three-valued. Arrays: any element
  ;; of either side; `!=` is the negation of `==`. Strings compare as bytes (the caller
  ;; passes folded copies for case-insensitive comparisons).
  (func $cmp (param $a i32) (param $b i32) (param $op i32) (result i32)
    (if (i32.eq (local.get $op) (i32.const 1))
      (then (return (call $not3 (call $cmp (local.get $a) (local.get $b) (i32.const 0))))))
    (if (i32.and (i32.ne (i32.load8_u (local.get $a)) (i32.const 6)) (i32.ne (i32.load8_u (local.get $b)) (i32.const 6)))
      (then (return (call $cmp_scalar (local.get $a) (local.get $b) (local.get $op)))))
    (call $finish (call $any (local.get $a) (i32.const 6) (local.get $b) (local.get $op) (i32.const 0))))

  ;; $cmp of two values that are not arrays. Null when either is null or their types do
  ;; not meet; an address meets a string that spells an address.
  (func $cmp_scalar (param $a i32) (param $b i32) (param $op i32) (result i32)
    (local $ta i32) (local $tb i32) (local $fa f64) (local $fb f64) (local $pa i32) (local $pb i32)
    (local.set $ta (i32.load8_u (local.get $a)))
    (local.set $tb (i32.load8_u (local.get $b)))
    (if (i32.or (i32.eqz (local.get $ta)) (i32.eqz (local.get $tb))) (then (return (i32.const 2))))
    ;; Numbers: longs exactly, otherwise as doubles.
    (if (i32.and (i32.or (i32.eq (local.get $ta) (i32.const 2)) (i32.eq (local.get $ta) (i32.const 3)))
                 (i32.or (i32.eq (local.get $tb) (i32.const 2)) (i32.eq (local.get $tb) (i32.const 3))))
      (then
        (if (i32.and (i32.eq (local.get $ta) (i32.const 2)) (i32.eq (local.get $tb) (i32.const 2)))
          (then
            (return (call $apply_order (local.get $op)
              (i32.sub (i64.gt_s (i64.load offset=8 (local.get $a)) (i64.load offset=8 (local.get $b)))
                       (i64.lt_s (i64.load offset=8 (local.get $a)) (i64.load offset=8 (local.get $b))))))))
        (local.set $fa (call $as_f64 (local.get $a)))
        (local.set $fb (call $as_f64 (local.get $b)))
        ;; NaN equals nothing and has no order.
        (if (i32.or (f64.ne (local.get $fa) (local.get $fa)) (f64.ne (local.get $fb) (local.get $fb)))
          (then (return (i32.eq (local.get $op) (i32.const 1)))))
        (return (call $apply_order (local.get $op)
          (i32.sub (f64.gt (local.get $fa) (local.get $fb)) (f64.lt (local.get $fa) (local.get $fb)))))))
    ;; Addresses, against addresses or strings that spell one.
    (if (i32.and (i32.or (i32.eq (local.get $ta) (i32.const 5)) (i32.eq (local.get $tb) (i32.const 5)))
                 (i32.and (i32.or (i32.eq (local.get $ta) (i32.const 4)) (i32.eq (local.get $ta) (i32.const 5)))
                          (i32.or (i32.eq (local.get $tb) (i32.const 4)) (i32.eq (local.get $tb) (i32.const 5)))))
      (then
        (local.set $pa (call $ip_of (local.get $a)))
        (local.set $pb (call $ip_of (local.get $b)))
        (if (i32.or (i32.eqz (local.get $pa)) (i32.eqz (local.get $pb))) (then (return (i32.const 2))))
        (return (call $apply_order (local.get $op) (call $mem_cmp (local.get $pa) (i32.const 16) (local.get $pb) (i32.const 16))))))
    (if (i32.ne (local.get $ta) (local.get $tb)) (then (return (i32.const 2))))
    ;; Same non-numeric type.
    (if (i32.eq (local.get $ta) (i32.const 1))
      (then
        (return (call $apply_order (local.get $op)
          (i32.sub (i64.gt_u (i64.load offset=8 (local.get $a)) (i64.load offset=8 (local.get $b)))
                   (i64.lt_u (i64.load offset=8 (local.get $a)) (i64.load offset=8 (local.get $b))))))))
    (if (i32.eq (local.get $ta) (i32.const 4))
      (then
        (return (call $apply_order (local.get $op)
          (call $mem_cmp (i32.load offset=8 (local.get $a)) (i32.load offset=4 (local.get $a))
                         (i32.load offset=8 (local.get $b)) (i32.load offset=4 (local.get $b)))))))
    (i32.const 2))

  ;; A number slot (long or double) as a double.
  (func $as_f64 (param $s i32) (result f64)
    (if (result f64) (i32.eq (i32.load8_u (local.get $s)) (i32.const 2))
      (then (f64.convert_i64_s (i64.load offset=8 (local.get $s))))
      (else (f64.load offset=8 (local.get $s)))))

  ;; The truth of a value where a boolean is expected (`and`, `or`, `not`, a condition):
  ;; booleans are themselves, null is null, an array is true if any element is, and
  ;; anything else has its python truthiness.
  (func $logic (param $s i32) (result i32)
    (local $tag i32)
    (local.set $tag (i32.load8_u (local.get $s)))
    (if (i32.eq (local.get $tag) (i32.const 1)) (then (return (i32.wrap_i64 (i64.load offset=8 (local.get $s))))))
    (if (i32.eq (local.get $tag) (i32.const 6))
      (then (return (call $finish (call $any (local.get $s) (i32.const 5) (i32.const 0) (i32.const 0) (i32.const 0))))))
    (call $truthy (local.get $s)))

  (func $is_null (param $s i32) (result i32)
    (i32.eqz (i32.load8_u (local.get $s))))

  ;; Truthiness of a value that is not a boolean; three-valued.
  (func $truthy (param $s i32) (result i32)
    (local $tag i32)
    (local.set $tag (i32.load8_u (local.get $s)))
    (if (i32.eqz (local.get $tag)) (then (return (i32.const 2))))
    (if (i32.eq (local.get $tag) (i32.const 1)) (then (return (i32.wrap_i64 (i64.load offset=8 (local.get $s))))))
    (if (i32.eq (local.get $tag) (i32.const 2)) (then (return (i64.ne (i64.load offset=8 (local.get $s)) (i64.const 0)))))
    (if (i32.eq (local.get $tag) (i32.const 3)) (then (return (f64.ne (f64.load offset=8 (local.get $s)) (f64.const 0)))))
    (if (i32.eq (local.get $tag) (i32.const 5)) (then (return (i32.const 1))))
    (i32.ne (i32.load offset=4 (local.get $s)) (i32.const 0)))

  ;; Three-valued `not`.
  (func $not3 (param $v i32) (result i32)
    (if (i32.eq (local.get $v) (i32.const 2)) (then (return (i32.const 2))))
    (i32.eqz (local.get $v)))

  ;; C's `fmod` (musl's algorithm): the remainder of x / y with the sign of x, exactly.
  ;; y is not zero.
  (func $fmod (param $x f64) (param $y f64) (result f64)
    (local $ux i64) (local $uy i64) (local $ex i32) (local $ey i32) (local $sx i64) (local $i i64)
    (local.set $ux (i64.reinterpret_f64 (local.get $x)))
    (local.set $uy (i64.reinterpret_f64 (local.get $y)))
    (local.set $ex (i32.wrap_i64 (i64.and (i64.shr_u (local.get $ux) (i64.const 52)) (i64.const 0x7ff))))
    (local.set $ey (i32.wrap_i64 (i64.and (i64.shr_u (local.get $uy) (i64.const 52)) (i64.const 0x7ff))))
    (local.set $sx (i64.and (local.get $ux) (i64.const 0x8000000000000000)))
    (if (i32.or (f64.ne (local.get $y) (local.get $y)) (i32.eq (local.get $ex) (i32.const 0x7ff)))
      (then (return (f64.div (f64.mul (local.get $x) (local.get $y)) (f64.mul (local.get $x) (local.get $y))))))
    (if (i64.le_u (i64.shl (local.get $ux) (i64.const 1)) (i64.shl (local.get $uy) (i64.const 1)))
      (then
        (if (i64.eq (i64.shl (local.get $ux) (i64.const 1)) (i64.shl (local.get $uy) (i64.const 1)))
          (then (return (f64.mul (f64.const 0) (local.get $x)))))
        (return (local.get $x))))
    ;; Normalize both mantissas.
    (if (i32.eqz (local.get $ex))
      (then
        (local.set $i (i64.shl (local.get $ux) (i64.const 12)))
        (block $done (loop $shift
          (br_if $done (i64.lt_s (local.get $i) (i64.const 0)))
          (local.set $ex (i32.sub (local.get $ex) (i32.const 1)))
          (local.set $i (i64.shl (local.get $i) (i64.const 1)))
          (br $shift)))
        (local.set $ux (i64.shl (local.get $ux) (i64.extend_i32_u (i32.sub (i32.const 1) (local.get $ex))))))
      (else
        (local.set $ux (i64.or (i64.and (local.get $ux) (i64.const 0xFFFFFFFFFFFFF)) (i64.const 0x10000000000000)))))
    (if (i32.eqz (local.get $ey))
      (then
        (local.set $i (i64.shl (local.get $uy) (i64.const 12)))
        (block $done (loop $shift
          (br_if $done (i64.lt_s (local.get $i) (i64.const 0)))
          (local.set $ey (i32.sub (local.get $ey) (i32.const 1)))
          (local.set $i (i64.shl (local.get $i) (i64.const 1)))
          (br $shift)))
        (local.set $uy (i64.shl (local.get $uy) (i64.extend_i32_u (i32.sub (i32.const 1) (local.get $ey))))))
      (else
        (local.set $uy (i64.or (i64.and (local.get $uy) (i64.const 0xFFFFFFFFFFFFF)) (i64.const 0x10000000000000)))))
    ;; x mod y, one bit at a time.
    (block $done (loop $bit
      (br_if $done (i32.le_s (local.get $ex) (local.get $ey)))
      (local.set $i (i64.sub (local.get $ux) (local.get $uy)))
      (if (i64.ge_s (local.get $i) (i64.const 0))
        (then
          (if (i64.eqz (local.get $i)) (then (return (f64.mul (f64.const 0) (local.get $x)))))
          (local.set $ux (local.get $i))))
      (local.set $ux (i64.shl (local.get $ux) (i64.const 1)))
      (local.set $ex (i32.sub (local.get $ex) (i32.const 1)))
      (br $bit)))
    (local.set $i (i64.sub (local.get $ux) (local.get $uy)))
    (if (i64.ge_s (local.get $i) (i64.const 0))
      (then
        (if (i64.eqz (local.get $i)) (then (return (f64.mul (f64.const 0) (local.get $x)))))
        (local.set $ux (local.get $i))))
    (block $done (loop $norm
      (br_if $done (i64.ne (i64.shr_u (local.get $ux) (i64.const 52)) (i64.const 0)))
      (local.set $ux (i64.shl (local.get $ux) (i64.const 1)))
      (local.set $ex (i32.sub (local.get $ex) (i32.const 1)))
      (br $norm)))
    ;; Scale the result.
    (if (i32.gt_s (local.get $ex) (i32.const 0))
      (then
        (local.set $ux (i64.or (i64.sub (local.get $ux) (i64.const 0x10000000000000)) (i64.shl (i64.extend_i32_u (local.get $ex)) (i64.const 52)))))
      (else
        (local.set $ux (i64.shr_u (local.get $ux) (i64.extend_i32_u (i32.sub (i32.const 1) (local.get $ex)))))))
    (f64.reinterpret_i64 (i64.or (local.get $ux) (local.get $sx))))

  ;; Arithmetic: 0 +, 1 -, 2 *, 3 / (toward zero), 4 / (down), 5 % (dividend's sign),
  ;; 6 % (divisor's sign). Null, non-numbers, overflow and division by zero give null.
  (func $arith (param $a i32) (param $b i32) (param $op i32) (result i32)
    (local $ta i32) (local $tb i32) (local $x i64) (local $y i64) (local $r i64) (local $fx f64) (local $fy f64) (local $q f64)
    (local.set $ta (i32.load8_u (local.get $a)))
    (local.set $tb (i32.load8_u (local.get $b)))
    (if (i32.eqz (i32.and (i32.or (i32.eq (local.get $ta) (i32.const 2)) (i32.eq (local.get $ta) (i32.const 3)))
                          (i32.or (i32.eq (local.get $tb) (i32.const 2)) (i32.eq (local.get $tb) (i32.const 3)))))
      (then (return (i32.const 0))))
    (if (i32.and (i32.eq (local.get $ta) (i32.const 2)) (i32.eq (local.get $tb) (i32.const 2)))
      (then
        (local.set $x (i64.load offset=8 (local.get $a)))
        (local.set $y (i64.load offset=8 (local.get $b)))
        (block $div
          (block $mul
            (block $sub
              (block $add
                (br_table $add $sub $mul $div (local.get $op)))
              (local.set $r (i64.add (local.get $x) (local.get $y)))
              (if (i64.lt_s (i64.and (i64.xor (local.get $x) (local.get $r)) (i64.xor (local.get $y) (local.get $r))) (i64.const 0))
                (then (return (i32.const 0))))
              (return (call $long_slot (local.get $r))))
            (local.set $r (i64.sub (local.get $x) (local.get $y)))
            (if (i64.lt_s (i64.and (i64.xor (local.get $x) (local.get $y)) (i64.xor (local.get $x) (local.get $r))) (i64.const 0))
              (then (return (i32.const 0))))
            (return (call $long_slot (local.get $r))))
          (local.set $r (i64.mul (local.get $x) (local.get $y)))
          ;; Overflow: x = -1 needs its own test, since MIN / -1 would trap.
          (if (i64.eq (local.get $x) (i64.const -1))
            (then (if (i64.eq (local.get $y) (i64.const 0x8000000000000000)) (then (return (i32.const 0)))))
            (else
              (if (i64.ne (local.get $x) (i64.const 0))
                (then (if (i64.ne (i64.div_s (local.get $r) (local.get $x)) (local.get $y)) (then (return (i32.const 0))))))))
          (return (call $long_slot (local.get $r))))
        ;; Division and remainder.
        (if (i64.eqz (local.get $y)) (then (return (i32.const 0))))
        (if (i32.and (i64.eq (local.get $x) (i64.const 0x8000000000000000)) (i64.eq (local.get $y) (i64.const -1)))
          (then (return (select (i32.const 0) (call $long_slot (i64.const 0)) (i32.lt_u (local.get $op) (i32.const 5))))))
        (if (i32.eq (local.get $op) (i32.const 3)) (then (return (call $long_slot (i64.div_s (local.get $x) (local.get $y))))))
        (if (i32.eq (local.get $op) (i32.const 4))
          (then
            (local.set $r (i64.div_s (local.get $x) (local.get $y)))
            (if (i32.and (i64.ne (i64.rem_s (local.get $x) (local.get $y)) (i64.const 0))
                         (i32.ne (i64.lt_s (local.get $x) (i64.const 0)) (i64.lt_s (local.get $y) (i64.const 0))))
              (then (local.set $r (i64.sub (local.get $r) (i64.const 1)))))
            (return (call $long_slot (local.get $r)))))
        (local.set $r (i64.rem_s (local.get $x) (local.get $y)))
        (if (i32.and (i32.eq (local.get $op) (i32.const 6))
                     (i32.and (i64.ne (local.get $r) (i64.const 0)) (i32.ne (i64.lt_s (local.get $r) (i64.const 0)) (i64.lt_s (local.get $y) (i64.const 0)))))
          (then (local.set $r (i64.add (local.get $r) (local.get $y)))))
        (return (call $long_slot (local.get $r)))))
    ;; A double is involved: IEEE arithmetic, true division.
    (local.set $fx (call $as_f64 (local.get $a)))
    (local.set $fy (call $as_f64 (local.get $b)))
    (if (i32.eqz (local.get $op)) (then (return (call $double_slot (f64.add (local.get $fx) (local.get $fy))))))
    (if (i32.eq (local.get $op) (i32.const 1)) (then (return (call $double_slot (f64.sub (local.get $fx) (local.get $fy))))))
    (if (i32.eq (local.get $op) (i32.const 2)) (then (return (call $double_slot (f64.mul (local.get $fx) (local.get $fy))))))
    (if (f64.eq (local.get $fy) (f64.const 0)) (then (return (i32.const 0))))
    (if (i32.lt_u (local.get $op) (i32.const 5)) (then (return (call $double_slot (f64.div (local.get $fx) (local.get $fy))))))
    (local.set $q (call $fmod (local.get $fx) (local.get $fy)))
    (if (i32.eq (local.get $op) (i32.const 6))
      (then
        ;; The divisor's sign, as python's float `%` (a zero too).
        (if (f64.eq (local.get $q) (f64.const 0))
          (then (local.set $q (f64.copysign (f64.const 0) (local.get $fy))))
          (else
            (if (i32.ne (f64.lt (local.get $q) (f64.const 0)) (f64.lt (local.get $fy) (f64.const 0)))
              (then (local.set $q (f64.add (local.get $q) (local.get $fy)))))))))
    (call $double_slot (local.get $q)))

  (func $neg (param $s i32) (result i32)
    (local $tag i32)
    (local.set $tag (i32.load8_u (local.get $s)))
    (if (i32.eq (local.get $tag) (i32.const 2))
      (then
        (if (i64.eq (i64.load offset=8 (local.get $s)) (i64.const 0x8000000000000000)) (then (return (i32.const 0))))
        (return (call $long_slot (i64.sub (i64.const 0) (i64.load offset=8 (local.get $s)))))))
    (if (i32.eq (local.get $tag) (i32.const 3))
      (then (return (call $double_slot (f64.neg (f64.load offset=8 (local.get $s)))))))
    (i32.const 0))

  ;; ------------------------------------------------------------------------------
  ;; Paths

  ;; Element `i` of an array, or null.
  (func $index (param $s i32) (param $i i32) (result i32)
    (if (i32.ne (i32.load8_u (local.get $s)) (i32.const 6)) (then (return (i32.const 0))))
    (if (i32.ge_u (local.get $i) (i32.load offset=4 (local.get $s))) (then (return (i32.const 0))))
    (i32.add (i32.load offset=8 (local.get $s)) (i32.shl (local.get $i) (i32.const 4))))

  ;; The value under `key` in an object, or null.
  (func $field (param $s i32) (param $key i32) (param $keylen i32) (result i32)
    (local $n i32) (local $e i32)
    (if (i32.ne (i32.load8_u (local.get $s)) (i32.const 7)) (then (return (i32.const 0))))
    (local.set $n (i32.load offset=4 (local.get $s)))
    (local.set $e (i32.load offset=8 (local.get $s)))
    (block $done
      (loop $next
        (br_if $done (i32.eqz (local.get $n)))
        (if (i32.eq (i32.load offset=4 (local.get $e)) (local.get $keylen))
          (then
            (if (call $mem_eq (i32.load (local.get $e)) (local.get $key) (local.get $keylen))
              (then (return (i32.add (local.get $e) (i32.const 8)))))))
        (local.set $e (i32.add (local.get $e) (i32.const 24)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $next)))
    (i32.const 0))

  ;; `length`: characters of a string, elements of an array or object; else null.
  (func $length (param $s i32) (result i32)
    (local $tag i32)
    (local.set $tag (i32.load8_u (local.get $s)))
    (if (i32.eq (local.get $tag) (i32.const 4))
      (then (return (call $long_slot (i64.extend_i32_u (call $utf8_count (i32.load offset=8 (local.get $s)) (i32.load offset=4 (local.get $s))))))))
    (if (i32.or (i32.eq (local.get $tag) (i32.const 6)) (i32.eq (local.get $tag) (i32.const 7)))
      (then (return (call $long_slot (i64.extend_i32_u (i32.load offset=4 (local.get $s)))))))
    (i32.const 0))
)
