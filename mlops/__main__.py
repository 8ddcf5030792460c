"""`python -m mlops` is the `mlops` command."""
import sys

from mlops.cli import main

sys.exit(main())
