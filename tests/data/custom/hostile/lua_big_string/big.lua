-- One allocation of a gigabyte: refused by the allocator at the limit (4 MiB).
function pred_eval(event, ctx)
  return #string.rep("x", 1024 * 1024 * 1024) > 0
end
