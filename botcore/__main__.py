"""``python -m botcore`` runs the command line."""

from botcore.cli import main

main()
