-- shell_command(minimum, prefix): process.name is "bash", process.args_count is at least
-- `minimum`, and process.command_line starts with `prefix` (all case-sensitive).
local NAME, COUNT, LINE

function pred_init(ctx)
  NAME = ctx.fields["process.name"]
  COUNT = ctx.fields["process.args_count"]
  LINE = ctx.fields["process.command_line"]
end

function pred_eval(event, ctx)
  local count, line = event[COUNT], event[LINE]
  local minimum, prefix = event.args[1], event.args[2]
  return event[NAME] == "bash"
    and type(count) == "number" and count >= minimum
    and type(line) == "string" and line:sub(1, #prefix) == prefix
end
