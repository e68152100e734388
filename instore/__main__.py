"""``python -m instore`` runs the CLI, for when the console script is not on PATH."""

from instore.cli import main

main()
