-- Never returns: stopped by the instruction budget (counted every 1,000 instructions).
function pred_eval(event, ctx)
  local n = 0
  while true do n = n + 1 end
end
