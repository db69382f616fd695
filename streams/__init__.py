"""mall-notify, the Kafka side: business events in, notifications out.

    core/      pure: events, catalog and shops, routing and rendering, outcomes, failures, retries
    runtime/   the worker: Kafka clients, consume loops, router, senders, retry forwarder, state
    ops/       operating it: command-line commands, dead letters, stats, topic admin
    api/       the admin API (aiohttp)
    devtools/  the demo, the local stack, an upstream simulator
    cli.py     the ``mall-notify`` command, which puts them together

Imports go down this list (devtools may use ops and runtime, ops may use runtime, nothing in
core imports anything above it); ``settings`` and ``logs`` are shared by all.
"""
