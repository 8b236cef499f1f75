"""The `selfhosted` command: check, list and call the configured endpoints; run the local demo.

Example:
    ```
    $ selfhosted demo                         # the whole product on embedded local servers
    $ selfhosted local up                     # start the local servers, write endpoints.yaml
    $ selfhosted check                        # health of every endpoint, one row each
    $ selfhosted chat -m tiny "Say hi"        # streams, then prints usage
    $ selfhosted embed -m minilm "one" "two"  # vectors and their cosine similarities
    $ selfhosted local down
    ```
"""

from __future__ import annotations

from selfhosted_cli._app import main

__all__ = ["main"]
