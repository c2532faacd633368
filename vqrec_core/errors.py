"""The one error family the core raises for problems a user can fix.

Every message is a full sentence that names the file, the column and a few offending rows where that applies,
and says how to fix it. The CLI prints ``str(err)`` to stderr and exits 2; the app shows it with ``st.error``.
"""


class VQRecError(Exception):
    """Base class: a problem with the user's input or saved state, never a bug."""


class DataError(VQRecError):
    """An input file or mapping cannot be used (missing column, unknown items, bad encoding, too small...)."""


class ConfigError(VQRecError):
    """A setting is out of range or inconsistent with the data (e.g. more codewords than training items)."""


class CheckpointError(VQRecError):
    """A saved model/artifact is missing, truncated, tampered with or of the wrong kind."""
