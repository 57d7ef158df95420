"""Compatibility re-export: the error types live in `lemcosim.federates.common.errors`."""

from lemcosim.federates.common.errors import LemcosimError

__all__ = ["LemcosimError"]
