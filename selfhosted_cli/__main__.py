"""`python -m selfhosted_cli`, the same as the `selfhosted` command."""

from __future__ import annotations

import sys

from selfhosted_cli._app import main

sys.exit(main())
