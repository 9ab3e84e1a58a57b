-- A syntax error on line 3: `then` is missing.
function pred_eval(event, ctx)
  if event[0] == "bash" return true end
  return false
end
