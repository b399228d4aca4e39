-- wrk script (scripts/bench-inventory-postgres ocsp): GETs the OCSP paths
-- of the file OCSP_PATHS in turn (signet-benchload --sample writes it),
-- only its first OCSP_HOT if set (a hot set, asked over and over), and
-- counts signed answers apart from the rest (tryLater, unauthorized: a
-- few bytes). A run that asks more than the file holds starts it again,
-- and says so: those answers come from the node's cache.
local paths = {}
for line in io.lines(os.getenv("OCSP_PATHS")) do paths[#paths + 1] = line end
local hot = tonumber(os.getenv("OCSP_HOT") or "0")
local n = (hot > 0 and hot < #paths) and hot or #paths
i, signed, other, wraps = 0, 0, 0, 0

request = function()
  i = i + 1
  if i > n then i, wraps = 1, wraps + 1 end
  return wrk.format("GET", paths[i])
end

response = function(status, headers, body)
  if status == 200 and #body > 64 then signed = signed + 1 else other = other + 1 end
end

local threads = {}
function setup(thread) threads[#threads + 1] = thread end

function done(summary, latency, requests)
  for _, t in ipairs(threads) do
    print(string.format("answers: %d signed, %d not (tryLater/unauthorized); %d of %d paths, started again %d times",
      t:get("signed"), t:get("other"), t:get("i"), n, t:get("wraps")))
  end
end
