-- high_entropy_argument(shortest, bits): true when an argument of the process (after the
-- program name) holds a token of at least `shortest` bytes whose Shannon entropy is at
-- least `bits` bits per byte: encoded or encrypted data.
--
-- A hand-written predicate under Kestrel's Predicate ABI v1 (docs/abi.md):
--   pred_init(ctx)           once, when the rules load
--   pred_eval(event, ctx)    per call: true, false, or nil (null)
--   pred_capture(event, ctx) after a true call: a table of the declared captures
-- `event[id]` is field `id` of the view (manifest.toml, `fields`, from 0), `event.args[i]`
-- the call's i-th argument. The sandbox has string, table, math and bit; no io, os,
-- require, load or debug; each call runs under an instruction budget and a memory limit.

local ARGS          -- view id of process.args
local found         -- what the last true call found, for pred_capture
local log = math.log
local LN2 = log(2)

function pred_init(ctx)
  ARGS = ctx.fields["process.args"]
end

-- Bits per byte of `token`.
local function entropy(token)
  local counts, n = {}, #token
  for i = 1, n do
    local byte = token:byte(i)
    counts[byte] = (counts[byte] or 0) + 1
  end
  local bits = 0
  for _, count in pairs(counts) do
    local p = count / n
    bits = bits - p * log(p)
  end
  return bits / LN2
end

function pred_eval(event, ctx)
  local args = event[ARGS]
  local shortest, bits = event.args[1], event.args[2]
  found = nil
  if type(args) ~= "table" or shortest == nil or bits == nil then
    return false
  end
  for i = 2, #args do
    local arg = args[i]
    if type(arg) == "string" and #arg >= shortest then
      -- Tokens: runs of anything but blanks, quotes and shell punctuation.
      for token in arg:gmatch("[^%s'\"`;|&()<>]+") do
        if #token >= shortest then
          local score = entropy(token)
          if score >= bits and (found == nil or score > found.entropy) then
            found = { entropy = score, length = #token, token = token }
          end
        end
      end
    end
  end
  return found ~= nil
end

function pred_capture(event, ctx)
  return {
    entropy = math.floor(found.entropy * 1000 + 0.5) / 1000,
    length = found.length,
    token = found.token:sub(1, 80),
  }
end
