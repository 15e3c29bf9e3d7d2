"""`python -m onyxia_hub` is `onyxia-hub`."""

import sys

from .cli import main

sys.exit(main())
