"""`python -m benchmarks.servers`: see `benchmarks.servers.run`."""

from __future__ import annotations

from benchmarks.servers.run import main

raise SystemExit(main())
