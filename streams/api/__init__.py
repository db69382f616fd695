"""The admin API (aiohttp): the catalog, shops' settings and their Official Account templates.

Errors become HTTP answers in one place each: 401/403 (tokens, ``authorize``), 404 (no settings),
422 with every problem (the core's ConfigError), 502 (WeChat refused: channels.wechat.CallFailed),
503 (Kafka did not acknowledge the settings).
"""
