-- Tries to leave the sandbox: there is no `os` (nor io, require, load or debug).
function pred_eval(event, ctx)
  os.execute("touch /tmp/kestrel-hostile-marker")
  return true
end
