"""The one error a user sees: a clear line on stderr and a non-zero exit."""

from invoke import Exit


class DockyardError(Exit):
    """A failure the user can fix: bad config, engine down, port taken, missing file.

    Invoke prints an ``Exit``'s message to stderr and exits with its code, with no
    traceback, which is exactly what a user-caused error should look like.
    """

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(f"dockyard: {message}", code=code)
        self.text = message

    def __str__(self) -> str:
        return self.text
