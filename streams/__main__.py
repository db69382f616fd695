"""``python -m streams`` runs the ``mall-notify`` command line."""

from streams.cli import main

main()
