"""Error types shared by every part of lemcosim.

A `LemcosimError` is a user-facing mistake (bad config, unknown bus, infeasible bid...): the CLI prints
its message without a traceback and exits non-zero.
"""


class LemcosimError(Exception):
    """Base of every error that is the user's to fix; the message names the file, key or entity."""
