"""The one exception type a user sees as a one-line message (never a traceback)."""


class InpaintError(Exception):
    """A problem with the user's input or settings; the CLI prints ``error: <message>`` and exits 2."""


class MaskSizeError(InpaintError):
    """A mask whose size differs from its photo's; each front end says how to fix it in its own terms."""
