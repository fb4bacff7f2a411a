"""`python -m taskledger …`: the `taskledger` command."""

import sys

from taskledger.cli import main

if __name__ == "__main__":
    sys.exit(main())
