"""resumed: the session resume daemon for PlainBox/Checkbox test sessions."""

__version__ = "0.1.0"
