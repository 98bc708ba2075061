"""The process's system calls and environment without importing `os`, for git's three actions.

Importing `os` costs a hit about 1 ms, a sixth of the interpreter's whole start under `-I -S`,
mostly for the mapping class behind `os.environ` (`_collections_abc`). `os` wraps the C module
`posix`, which has every call the hit path makes, and its environment is decoded here from bytes
as `os` decodes it. Once anything has imported `os` (every other command, the tests), `environ()`
is `os.environ` itself, so a change made through it is seen here. Where there is no `posix`
(Windows), this is `os`.
"""

from __future__ import annotations

import sys

try:
    import posix as calls
except ImportError:  # Windows
    import os as calls

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["calls", "environ"]
_decoded: dict[str, str] | None = None


def environ() -> Mapping[str, str]:
    """The environment, as `os.environ` has it."""
    global _decoded
    if "os" in sys.modules:
        return sys.modules["os"].environ
    if _decoded is None:
        encoding = sys.getfilesystemencoding()
        _decoded = {key.decode(encoding, "surrogateescape"): value.decode(encoding,
                                                                          "surrogateescape")
                    for key, value in calls.environ.items()}
    return _decoded
