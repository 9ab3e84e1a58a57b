-- Kestrel enforcement test predicate. Written for this project.
-- Burns a few hundred milliseconds of interpreter time (more in a debug build), then says yes.
function pred_eval(event, ctx)
  local sum = 0
  for i = 1, 20000000 do
    sum = sum + i % 7
  end
  return sum > 0
end
