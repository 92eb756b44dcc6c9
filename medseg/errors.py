"""Errors that the `medseg` command reports as one clear line instead of a traceback."""


class MedsegError(Exception):
    """A problem the user can fix: the message names the file and what was expected."""


class Interrupted(MedsegError):
    """Stopped by SIGTERM/SIGINT after writing a resume file; running the same command again continues.

    Its own exit status (EX_TEMPFAIL) tells a scheduler's retry policy "try again" apart from
    a user error (2).
    """

    exit_code = 75


class DataError(MedsegError):
    """Raw or prepared data is missing, malformed, or not in the expected layout."""
