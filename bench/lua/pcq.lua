-- wrk script of bench/run: the requests of one scenario against pcq, the ceiling or a peer.
--
--   wrk -t2 -c32 -d10s -s bench/lua/pcq.lua URL -- SCENARIO RUN TOKEN READERS POOL_FROM POOL_SIZE THREADS
--
-- SCENARIO  get     GET /v1/customers/{id}/qualifications, id picked at random among the readers
--           post    POST /v1/customers/{id}/qualifications {"qualification":"StateOwnedEntity"},
--                   every request on a customer of the pool that has not been used before
--           mixed   90% get, 10% post (drawn at random per request)
--           create  POST /v1/customers with a domain no other request uses
--           async   POST /v1/customers, then POST /v1/customers/{new id}/qualifications
--                   {"qualification":"Education"} for the customer just created, over and over;
--                   each thread stops once it has made POOL_SIZE / THREADS such pairs;
--                   "seconds" and "rps" then cover the first request to the last answer, which
--                   "first_us" and "last_us" give in microseconds since the epoch. Needs
--                   WRK_ASYNC=1, WRK_ASYNC_DONE naming a file each thread adds a line to when
--                   it has finished (wrk runs until its -d or SIGINT), one connection per thread
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
-- async: the customer the thread created last, whose Education request comes next, and how
-- many pairs the thread has made and is to make. async_first and async_last (globals, for
-- done()) are when the thread sent its first request and had its last answer.
local async_customer, async_pairs, async_quota = nil, 0, 0
async_first, async_last = nil, nil

-- The wall clock in microseconds (wrk's own clock is not available to scripts).
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_usec; } pcq_timeval;
int gettimeofday(pcq_timeval *tv, void *tz);
]]
local timeval = ffi.new("pcq_timeval")
local function now_us()
   ffi.C.gettimeofday(timeval, nil)
   return tonumber(timeval.tv_sec) * 1000000 + tonumber(timeval.tv_usec)
end
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
   async_quota = block
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

local EDUCATION = '{"qualification":"Education"}'

local function async_request()
   if not async_first then async_first = now_us() end
   if async_customer then
      post_headers["MS-RequestId"] = unique()
      return wrk.format("POST", "/v1/customers/" .. async_customer .. "/qualifications",
         post_headers, EDUCATION)
   end
   return create_customer()
end

-- The answer to an async request: a created customer's id, or the end of a pair.
local function async_response(status, body)
   if async_customer == nil then
      if status == 201 then async_customer = string.match(body, '^{"id":"([^"]+)"') end
      return
   end
   async_customer = nil
   async_pairs = async_pairs + 1
   if async_pairs >= async_quota then
      async_last = now_us()
      -- One line per finished thread: bench/run interrupts wrk once every thread has one.
      local file = io.open(os.getenv("WRK_ASYNC_DONE"), "a")
      file:write(thread_index, "\n")
      file:close()
      wrk.thread:stop()
   end
end

function request()
   if scenario == "async" then
      return async_request()
   elseif scenario == "get" then
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

-- response() is defined only when needed: with it, wrk parses every answer's headers and body.
-- The async scenario needs it (WRK_ASYNC=1 says so before init() names the scenario).
local count_statuses = os.getenv("WRK_STATUSES") == "1"
if count_statuses then statuses = {} end
if count_statuses or os.getenv("WRK_ASYNC") == "1" then
   function response(status, headers, body)
      if count_statuses then statuses[status] = (statuses[status] or 0) + 1 end
      if scenario == "async" then async_response(status, body) end
   end
end

function done(summary, latency, requests)
   local seconds = summary.duration / 1e6
   -- async: the time from the first request to the last answer, over every thread.
   local first, last
   for _, thread in ipairs(threads) do
      local f, l = thread:get("async_first"), thread:get("async_last")
      if f and (not first or f < first) then first = f end
      if l and (not last or l > last) then last = l end
   end
   local timing = ""
   if first and last then
      seconds = (last - first) / 1e6
      timing = string.format(',"first_us":%.0f,"last_us":%.0f', first, last)
   end
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
      '"statuses":{%s}%s}\n',
      summary.requests, seconds, summary.requests / seconds, ms(50), ms(90), ms(99),
      latency.max / 1000, e.connect, e.read, e.write, e.timeout, e.status, table.concat(counted, ","),
      timing))
end
