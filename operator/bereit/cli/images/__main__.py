"""`python -m bereit.cli.images build|model …`: the operator, runtime and model images."""

import sys

from bereit.cli.images.builder import main

sys.exit(main())
