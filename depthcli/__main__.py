"""`python -m depthcli` (also what `torchrun -m depthcli` runs)."""

from depthcli.cli.app import main

if __name__ == "__main__":
    main()
