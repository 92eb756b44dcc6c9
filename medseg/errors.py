"""Errors that the `medseg` command reports as one clear line instead of a traceback."""


class MedsegError(Exception):
    """A problem the user can fix: the message names the file and what was expected."""


class DataError(MedsegError):
    """Raw or prepared data is missing, malformed, or not in the expected layout."""
