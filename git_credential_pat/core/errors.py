"""The exception types whose text is shown to people.

Anything raised as `HelperError` reaches the user as a single line on stderr, so its message must
say what went wrong and what to do, and must never contain a secret. Every other exception is a bug
and is reported by type only, because its text could carry a token.
"""


class HelperError(Exception):
    """A failure the user can act on; `str(error)` is the whole message.

    `quit_git` asks git to stop (`quit=1`) rather than try the next helper or prompt for a
    user name and password itself.
    """

    quit_git = False


class SignInRequired(HelperError):
    """Sign-in needs a person, but nobody can be asked (no terminal, no browser, or forbidden)."""


class StoreError(HelperError):
    """The secret store cannot be used; the message says how to fix it."""


class UsageError(HelperError):
    """The command line asks for something impossible; exits with status 2."""
