"""Operating the pipeline: the command-line commands, dead letters, stats and topic admin.

Errors: the commands turn the core's ConfigError and TopicsError into a one-line refusal and a
non-zero exit (``cli_common.fail``); RuntimeError says that Kafka did not acknowledge a write
(settings, replays) or did not show a topic it was asked to create.
"""
