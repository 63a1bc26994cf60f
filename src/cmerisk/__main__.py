"""``python -m cmerisk`` runs the command-line interface."""

from cmerisk.cli import main

main()
