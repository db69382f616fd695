"""The lanes: a consume loop each, and what each does with its records (route, send, forward, pair)."""
