;; Never returns: stopped by its epoch deadline (20 ms).
(module
  (memory (export "memory") 1)
  (global (export "view") i32 (i32.const 1024))
  (global (export "view_len") i32 (i32.const 4096))
  (func (export "pred_eval") (param $event i32) (param $ctx i32) (result i32)
    (loop $forever (br $forever))
    (i32.const 1)))
