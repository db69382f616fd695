"""The admin API (aiohttp): the catalog, shops' settings and their Official Account templates."""
