"""eth-account's Account, imported without leaving the interpreter's recursion limit raised.

eth-account imports py_ecc, which raises the recursion limit to 100000 when imported. With that
limit, a deeply nested input (JSON from a client, say) overflows the C stack and kills the
process instead of raising RecursionError. Nothing we use from eth-account recurses deeply, so
the limit is put back as it was. Import Account from here, never from eth_account directly.
"""

from __future__ import annotations

import sys

_limit = sys.getrecursionlimit()
try:
    from eth_account import Account
finally:
    sys.setrecursionlimit(_limit)

__all__ = ["Account"]
