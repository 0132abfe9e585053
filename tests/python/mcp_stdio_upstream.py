"""An MCP server over stdin/stdout (the official `mcp` package), put behind the gateway as a
`stdio` upstream in the tests: the gateway starts it, with only the manifest's environment.

    python mcp_stdio_upstream.py

Tools:
  env_value(name)   the value of an environment variable, or "<unset>"
  pid()             the process id (a restarted server has another)
  crash()           writes "crashing now" to stderr and exits with status 3
"""

import os
import sys
import time

from mcp.server.mcpserver import MCPServer

mcp = MCPServer(name="py-stdio-upstream", version="0.1.0")


@mcp.tool(description="The value of an environment variable")
def env_value(name: str) -> str:
    return os.environ.get(name, "<unset>")


@mcp.tool(description="The server's process id")
def pid() -> str:
    return str(os.getpid())


@mcp.tool(description="Exits the server at once")
def crash() -> str:
    print("crashing now", file=sys.stderr, flush=True)
    time.sleep(0.3)
    os._exit(3)


if __name__ == "__main__":
    print("stdio upstream up", file=sys.stderr, flush=True)
    mcp.run(transport="stdio")
