"""``python -m lhama`` runs the CLI."""

from lhama.cli import main

main()
