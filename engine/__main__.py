"""`python -m engine`: runs the command-line dispatcher in `engine.cli`."""
import sys

from engine.cli import main

if __name__ == "__main__":
    sys.exit(main())
