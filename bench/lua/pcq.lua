-- wrk script of bench/run: the requests of one scenario against pcq, the ceiling or a peer.
--
--   wrk -t2 -c32 -d10s -s bench/lua/pcq.lua URL -- SCENARIO RUN TOKEN READERS POOL_FROM POOL_SIZE THREADS
--
-- SCENARIO  get     GET /v1/customers/{id}/qualifications, id picked at random among the readers
--           post    POST /v1/customers/{id}/qualifications {"qualification":"StateOwnedEntity"},
--                   every request on a customer of the pool that has not been used before
--           mixed   90% get, 10% post (drawn at random per request)
--           create  POST /v1/customers with a domain no other request uses
-- RUN       1 to 65535, distinct for every wrk run against one server: it makes the
--           MS-RequestId and domain of every request unique (warm-up and measured runs differ)
-- TOKEN     bearer token sent with every request
-- READERS   how many reader customers exist (ids reader_id(0 .. READERS-1))
-- POOL_FROM, POOL_SIZE
--           the part of the pool this run may use (ids pool_id(POOL_FROM .. +POOL_SIZE-1)), split
--           into one block per thread; a thread that has used its block starts it again (pcq
--           then answers 409: the table shows those as errors, and BENCH_POOL must grow)
-- THREADS   wrk's -t
--
-- The customer ids follow the seed file bench/run writes (see there). With WRK_NODES set to
-- "HOST:PORT HOST:PORT ...", the threads are spread over those servers round-robin (the URL only
-- names the first one).
--
-- At the end one line of JSON goes to standard output: completed requests, errors by kind,
-- requests per second and latency percentiles in milliseconds. With WRK_STATUSES=1 it also
-- counts the answers by status ("statuses"), which costs wrk time: bench/run does it in the
-- warm-up only.

local READER_PREFIX = "b0000000-0000-4000-8000-"
local POOL_PREFIX = "c0000000-0000-4000-8000-"

local function reader_id(n) return READER_PREFIX .. string.format("%012x", n) end
local function pool_id(n) return POOL_PREFIX .. string.format("%012x", n) end

-- setup() runs in wrk's main script state, once per thread, before init().
local next_thread = 0
local threads = {}

function setup(thread)
   thread:set("thread_index", next_thread)
   local nodes = os.getenv("WRK_NODES")
   if nodes and nodes ~= "" then
      local list = {}
      for node in string.gmatch(nodes, "%S+") do list[#list + 1] = node end
      local host, port = string.match(list[next_thread % #list + 1], "^(.+):(%d+)$")
      thread.addr = wrk.lookup(host, port)[1]
   end
   next_thread = next_thread + 1
   threads[#threads + 1] = thread
end

local scenario, run, readers, pool_next, pool_from, pool_to
local sent = 0
local get_headers, post_headers

function init(args)
   scenario = args[1]
   run = tonumber(args[2])
   local token = args[3]
   readers = tonumber(args[4])
   local from, size, thread_count = tonumber(args[5]), tonumber(args[6]), tonumber(args[7])
   if not (scenario and run and token and readers and from and size and thread_count) then
      error("usage: -- SCENARIO RUN TOKEN READERS POOL_FROM POOL_SIZE THREADS")
   end
   -- This thread's block of the pool.
   local block = math.floor(size / thread_count)
   pool_from = from + thread_index * block
   pool_to = pool_from + block
   pool_next = pool_from
   math.randomseed(run * 65536 + thread_index)
   get_headers = { ["Authorization"] = "Bearer " .. token }
   post_headers = { ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json" }
end

-- An id no other request of this server gets: run, thread and counter, in the shape of a GUID.
local function unique()
   sent = sent + 1
   return string.format("%08x-%04x-4000-8000-%012x", run, thread_index, sent)
end

local function get_qualifications()
   local id = reader_id(math.random(0, readers - 1))
   get_headers["MS-RequestId"] = unique()
   return wrk.format("GET", "/v1/customers/" .. id .. "/qualifications", get_headers)
end

local QUALIFICATION = '{"qualification":"StateOwnedEntity"}'

local function post_qualification()
   if pool_next >= pool_to then pool_next = pool_from end
   local id = pool_id(pool_next)
   pool_next = pool_next + 1
   post_headers["MS-RequestId"] = unique()
   return wrk.format("POST", "/v1/customers/" .. id .. "/qualifications", post_headers, QUALIFICATION)
end

local function create_customer()
   local request_id = unique()
   post_headers["MS-RequestId"] = request_id
   local body = '{"companyProfile":{"domain":"' .. request_id ..
      '.bench.example.com","companyName":"Bench"}}'
   return wrk.format("POST", "/v1/customers", post_headers, body)
end

function request()
   if scenario == "get" then
      return get_qualifications()
   elseif scenario == "post" then
      return post_qualification()
   elseif scenario == "mixed" then
      if math.random() < 0.1 then return post_qualification() end
      return get_qualifications()
   elseif scenario == "create" then
      return create_customer()
   end
   error("unknown scenario " .. tostring(scenario))
end

if os.getenv("WRK_STATUSES") == "1" then
   statuses = {}
   function response(status)
      statuses[status] = (statuses[status] or 0) + 1
   end
end

function done(summary, latency, requests)
   local seconds = summary.duration / 1e6
   local e = summary.errors
   local function ms(p) return latency:percentile(p) / 1000 end
   local by_status, counted = {}, {}
   for _, thread in ipairs(threads) do
      for status, n in pairs(thread:get("statuses") or {}) do
         by_status[status] = (by_status[status] or 0) + n
      end
   end
   for status, n in pairs(by_status) do
      counted[#counted + 1] = string.format('"%d":%d', status, n)
   end
   table.sort(counted)
   io.write(string.format(
      '{"requests":%d,"seconds":%.3f,"rps":%.1f,"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,' ..
      '"max_ms":%.3f,"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d,"status":%d},' ..
      '"statuses":{%s}}\n',
      summary.requests, seconds, summary.requests / seconds, ms(50), ms(90), ms(99),
      latency.max / 1000, e.connect, e.read, e.write, e.timeout, e.status, table.concat(counted, ",")))
end
