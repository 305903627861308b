/**
 * A stdlib MCP server (Python, no SDK) for the Docker suite, run as `python3 -u -c TOOLS_SERVER NAME`. Its tools show
 * what the process sees: `add`, `inits` (how many initialize requests reached it), `slow` (three progress
 * notifications for the request's token, `ms` apart, then "slow done TAG"), `change` (tools/list_changed) and `ask`
 * (a request of its own, `method` with `params`, default roots/list, answered with what the client said: its result
 * or its error).
 */
export const TOOLS_SERVER = `import json, sys, time
NAME = sys.argv[1] if len(sys.argv) > 1 else "tools"
inits = 0
asking = None
def send(m): print(json.dumps(m), flush=True)
def text(t): return {"content": [{"type": "text", "text": str(t)}]}
for line in sys.stdin:
    m = json.loads(line)
    if "method" not in m:
        if asking is not None and m.get("id") == "s1":
            answer = m["result"] if "result" in m else {"error": m.get("error")}
            send({"jsonrpc": "2.0", "id": asking, "result": text(json.dumps(answer))})
            asking = None
        continue
    if "id" not in m: continue
    r = {"jsonrpc": "2.0", "id": m["id"]}
    p = m.get("params") or {}
    if m["method"] == "initialize":
        inits += 1
        r["result"] = {"protocolVersion": p["protocolVersion"], "capabilities": {"tools": {"listChanged": True}},
                       "serverInfo": {"name": NAME, "version": "1"}}
    elif m["method"] == "tools/list":
        r["result"] = {"tools": [{"name": n, "inputSchema": {"type": "object"}} for n in
                                 ("add", "inits", "slow", "change", "ask")]}
    elif m["method"] == "ping":
        r["result"] = {}
    elif m["method"] == "tools/call":
        name, a = p["name"], p.get("arguments") or {}
        if name == "add": r["result"] = text(a["a"] + a["b"])
        elif name == "inits": r["result"] = text(inits)
        elif name == "slow":
            token = (p.get("_meta") or {}).get("progressToken")
            for i in (1, 2, 3):
                if token is not None:
                    send({"jsonrpc": "2.0", "method": "notifications/progress",
                          "params": {"progressToken": token, "progress": i, "total": 3}})
                time.sleep(a.get("ms", 0) / 1000)
            r["result"] = text(("slow done " + str(a.get("tag", ""))).strip())
        elif name == "change":
            send({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"})
            r["result"] = text("changed")
        elif name == "ask":
            asking = m["id"]
            ask = {"jsonrpc": "2.0", "id": "s1", "method": a.get("method", "roots/list")}
            if "params" in a: ask["params"] = a["params"]
            send(ask)
            continue
    else:
        r["error"] = {"code": -32601, "message": "no method"}
    send(r)
`;

/** The `command`/`args` of a server definition running TOOLS_SERVER as `name` (its serverInfo.name). */
export const toolsServer = (name: string): { command: string; args: string[] } => ({
  command: 'python3',
  args: ['-u', '-c', TOOLS_SERVER, name],
});
