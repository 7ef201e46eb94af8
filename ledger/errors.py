"""The one exception type the CLI turns into a one-line message and a non-zero exit."""

from __future__ import annotations


class UserError(Exception):
    """Bad input or state the user can fix; the message says what is wrong and how to fix it."""
