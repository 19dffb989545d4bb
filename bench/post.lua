-- wrk script for bench/run: an MCP tools/call POST (query "SELECT 1" on the
-- demo database) on a session opened beforehand with initialize (curl).
-- MCP_SESSION is the Mcp-Session-Id to send; MCP_BEARER, when set and not
-- empty, is sent as "Authorization: Bearer <MCP_BEARER>" (the identity test).
local sid = os.getenv("MCP_SESSION") or ""
local bearer = os.getenv("MCP_BEARER") or ""
wrk.method = "POST"
wrk.body = '{"jsonrpc":"2.0","id":7,"method":"tools/call",' ..
           '"params":{"name":"query","arguments":{"sql":"SELECT 1"}}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json"
wrk.headers["Mcp-Session-Id"] = sid
wrk.headers["MCP-Protocol-Version"] = "2025-06-18"
if bearer ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. bearer
end
-- No response() hook: wrk then counts non-2xx answers itself ("Non-2xx or
-- 3xx responses") without running Lua per response.
