"""Frozen-app entry point: ``caw`` runs the command line (``caw --help``); ``caw gui`` starts the desktop app."""

import multiprocessing
import sys


def main() -> int:
    multiprocessing.freeze_support()  # DataLoader workers re-enter the frozen executable
    if len(sys.argv) > 1 and sys.argv[1] == "gui":
        from caw_gui.app import main as gui_main

        return gui_main(sys.argv[2:])
    from caw_core.cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
