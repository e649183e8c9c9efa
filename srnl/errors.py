class SrnlError(Exception):
    """A problem the user can fix (bad input, missing file, refused overwrite): reported in one line."""
