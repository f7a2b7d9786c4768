"""The error type for a user's mistake: reported as one line, without a traceback."""


class ConfigError(ValueError):
    """A config value, file or device that cannot be used; the message says which and why."""
