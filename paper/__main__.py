"""`python -m paper [--full] [--no-latex] ...`: see paper/build.py."""

import sys

from paper.build import main

sys.exit(main())
