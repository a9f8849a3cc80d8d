-- SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
--- xl-udp-load.lua: the testbed's counterpart of xl-loadgen, for MoonGen.
--
-- Sends the same frames as xl-loadgen (UDP, or DNS A queries with --dns)
-- from one DPDK port at a given packet rate (hardware rate control per TX
-- queue, 0 = line rate) for a given time, and prints one result line
--
--   XL-LOADGEN-RESULT {"generator": "moongen", "packets_sent": ..., ...}
--
-- that xdplab.offload.traffic parses (plugins/module_utils/loadgen.py).
--
-- Usage (testbed only, needs a DPDK-bound NIC):
--   MoonGen xl-udp-load.lua 0 --rate 1000000 --size 60 --duration 10
--
-- Written against MoonGen's libmoon API (moongen/libmoon, device, memory,
-- stats): configure(parser) + master(args), mg.startTask/task:wait,
-- mg.setRuntime, txQueue:setRateMpps, bufArray:alloc, txQueue:send.

local mg     = require "moongen"
local memory = require "memory"
local device = require "device"
local log    = require "log"
local ffi    = require "ffi"

local MIN_SIZE = 60
local MAX_SIZE = 1518

function configure(parser)
	parser:description("Send UDP (or DNS query) frames at a fixed packet rate; prints an XL-LOADGEN-RESULT JSON line.")
	parser:argument("port", "DPDK port to send on."):convert(tonumber)
	parser:option("--rate", "Packets per second over all threads, 0 = line rate."):default("0"):convert(tonumber)
	parser:option("--size", "Frame length without FCS (60..1518)."):default("60"):convert(tonumber)
	parser:option("--duration", "Seconds to send."):default("10"):convert(tonumber)
	parser:option("--threads", "TX queues, one sending task each."):default("1"):convert(tonumber)
	parser:option("--src-mac", "Source MAC; default: the port's own."):default("port")
	parser:option("--dst-mac", "Destination MAC."):default("02:00:c6:12:00:02")
	parser:option("--src-ip", "Source IPv4 address."):default("198.18.0.1")
	parser:option("--dst-ip", "Destination IPv4 address."):default("198.18.0.2")
	parser:option("--src-port", "UDP source port (default 9, 40000 with --dns)."):convert(tonumber)
	parser:option("--dst-port", "UDP destination port (53 with --dns unless given)."):convert(tonumber)
	parser:flag("--dns", "Send DNS A queries instead of plain UDP.")
	parser:option("--qname", "Name to query with --dns."):default("xl-query.example")
	local args = parser:parse()
	if not args.src_port then
		args.src_port = args.dns and 40000 or 9
	end
	if not args.dst_port then
		args.dst_port = args.dns and 53 or 9
	end
	if args.rate < 0 then
		parser:error("--rate must be >= 0 (0 = line rate)")
	end
	if args.duration <= 0 then
		parser:error("--duration must be > 0")
	end
	if args.threads < 1 then
		parser:error("--threads must be >= 1")
	end
	if args.size < MIN_SIZE or args.size > MAX_SIZE then
		parser:error(("--size %d is out of range: frame length without FCS must be %d..%d bytes"):format(args.size, MIN_SIZE, MAX_SIZE))
	end
	return args
end

-- DNS query message (header + question) as a byte table.
local function dnsQuery(qname)
	local bytes = { 0x58, 0x4c, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00 }
	for label in qname:gmatch("[^%.]+") do
		if #label > 63 then
			log:fatal("--qname label '%s' is longer than 63 bytes", label)
		end
		bytes[#bytes + 1] = #label
		for i = 1, #label do
			bytes[#bytes + 1] = label:byte(i)
		end
	end
	bytes[#bytes + 1] = 0
	for _, b in ipairs({ 0x00, 0x01, 0x00, 0x01 }) do -- QTYPE A, QCLASS IN
		bytes[#bytes + 1] = b
	end
	return bytes
end

function master(args)
	local dev = device.config{ port = args.port, txQueues = args.threads, rxQueues = 1 }
	device.waitForLinks()
	local size, l3Length, dns = args.size, nil, nil
	if args.dns then
		dns = dnsQuery(args.qname)
		l3Length = 14 + 20 + 8 + #dns
		if size < l3Length then
			log:fatal("--size %d is too small for a DNS query for '%s' (%d bytes)", size, args.qname, l3Length)
		end
	end
	local tasks = {}
	for i = 1, args.threads do
		local queue = dev:getTxQueue(i - 1)
		if args.rate > 0 then
			queue:setRateMpps(args.rate / args.threads / 10^6, size)
		end
		tasks[i] = mg.startTask("loadTask", queue, args, dns, l3Length)
	end
	mg.setRuntime(args.duration)
	local total, first, last = 0, nil, nil
	local threads = {}
	for i, task in ipairs(tasks) do
		local sent, t0, t1 = task:wait()
		sent, t0, t1 = sent or 0, t0 or 0, t1 or 0
		total = total + sent
		first = first and math.min(first, t0) or t0
		last = last and math.max(last, t1) or t1
		threads[#threads + 1] = ('{"thread": %d, "packets_sent": %d, "duration_s": %.6f, "rate_pps": %.1f}'):format(
			i - 1, sent, t1 - t0, (t1 > t0) and sent / (t1 - t0) or 0)
	end
	local duration = (first and last and last > first) and (last - first) or 0
	print(("XL-LOADGEN-RESULT {\"generator\": \"moongen\", \"port\": %d, \"size\": %d, \"dns\": %s, "
		.. "\"packets_sent\": %d, \"bytes_sent\": %d, \"duration_s\": %.6f, \"rate_pps\": %.1f, "
		.. "\"offered_rate_pps\": %.1f, \"requested_duration_s\": %.6f, \"threads\": [%s]}"):format(
		args.port, size, args.dns and "true" or "false", total, total * size, duration,
		duration > 0 and total / duration or 0, args.rate, args.duration, table.concat(threads, ", ")))
	io.stdout:flush()
end

function loadTask(queue, args, dns, l3Length)
	local size = args.size
	local mempool = memory.createMemPool(function(buf)
		buf:getUdpPacket():fill{
			ethSrc = args.src_mac == "port" and queue or args.src_mac,
			ethDst = args.dst_mac,
			ip4Src = args.src_ip,
			ip4Dst = args.dst_ip,
			udpSrc = args.src_port,
			udpDst = args.dst_port,
			pktLength = l3Length or size,
		}
		if dns then
			local bytes = buf:getBytes()
			for i, b in ipairs(dns) do
				bytes[14 + 20 + 8 + i - 1] = b
			end
		end
	end)
	local bufs = mempool:bufArray()
	local sent = 0
	local t0 = mg.getTime()
	while mg.running() do
		bufs:alloc(size)
		if dns then
			bufs:offloadUdpChecksums()
		else
			bufs:offloadIPChecksums()
		end
		sent = sent + queue:send(bufs)
	end
	local t1 = mg.getTime()
	return sent, t0, t1
end
