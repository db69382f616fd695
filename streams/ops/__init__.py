"""Operating the pipeline: the command-line commands, dead letters, stats and topic admin."""
