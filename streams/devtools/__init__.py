"""Development tools: the demo, the local stack of child processes, an upstream simulator."""
