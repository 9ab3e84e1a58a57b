-- Grows a table of strings without end: stopped by the memory limit (4 MiB).
function pred_eval(event, ctx)
  local hoard = {}
  for i = 1, 1e9 do hoard[i] = ("x"):rep(1024) .. i end
  return true
end
