class SrnlError(Exception):
    """A problem the user can fix (bad input, missing file, refused overwrite): reported in one line.
    `option` names the setting that would allow what was refused (overwrite, max_pixels, resume,
    model), so that each front end can point to its own spelling of it."""

    def __init__(self, message: str, option: str | None = None):
        super().__init__(message)
        self.option = option
