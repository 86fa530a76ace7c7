"""``python -m intake`` runs the command line."""

from .cli import main

main()
