-- bench/ingest.lua - wrk script: POSTs pre-signed WhatsApp webhooks, each with a distinct
-- wamid. Reads $BENCH_BODIES ("<signature>\t<body>" a line, made by bench/run); thread i of
-- $BENCH_THREADS takes every line i mod n, so no two requests share a wamid until the file
-- runs out (then it wraps, and bench/run says so).
local next_id = 0

function setup(thread)
	thread:set("id", next_id)
	next_id = next_id + 1
end

function init(args)
	local nthreads = tonumber(os.getenv("BENCH_THREADS") or "2")
	target = os.getenv("BENCH_PATH")
	sigs, bodies = {}, {}
	local i = 0
	for line in io.lines(os.getenv("BENCH_BODIES")) do
		if i % nthreads == id then
			local tab = line:find("\t", 1, true)
			sigs[#sigs + 1] = line:sub(1, tab - 1)
			bodies[#bodies + 1] = line:sub(tab + 1)
		end
		i = i + 1
	end
	n = 0
end

function request()
	local k = (n % #bodies) + 1
	n = n + 1
	return wrk.format("POST", target, {
		["Content-Type"] = "application/json",
		["X-Hub-Signature-256"] = sigs[k],
	}, bodies[k])
end
