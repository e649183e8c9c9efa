class SrnlError(Exception):
    """A problem the user can fix (bad input, missing file, refused overwrite): reported in one line.
    `option` names the setting that would allow what was refused (overwrite, max_pixels, resume,
    model), so that each front end can point to its own spelling of it."""

    def __init__(self, message: str, option: str | None = None):
        super().__init__(message)
        self.option = option


class Interrupted(Exception):
    """Ctrl-C or SIGTERM during a file job: `counts` says how far it got, status by status
    ("ok", "skipped", "failed", "interrupted", "not started")."""

    def __init__(self, counts: dict[str, int]):
        total = sum(counts.values())
        rest = ", ".join(f"{n} {status}" for status, n in counts.items()
                         if n and status != "ok")
        super().__init__(f"{counts.get('ok', 0)} of {total} files finished"
                         + (f" ({rest})" if rest else ""))
        self.counts = counts
