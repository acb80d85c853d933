"""One table mapping exceptions to ``org.resumed.Resume1.Error.<Name>``.

The bus adapter answers every failed call through :func:`dbus_error_for`, so
a client never sees ``unknown.ValueError`` nor a Python traceback.
"""

from __future__ import annotations

import logging

from resumed.daemon.names import error_name
from resumed.registry import NoSuchJobError, NoSuchSessionError, NotResumedError

logger = logging.getLogger(__name__)


class AccessDeniedError(Exception):
    """The caller may not call this method (checked on the caller's uid)."""


#: Exception class -> short D-Bus error name; anything else is ``Internal``.
ERROR_TABLE: tuple[tuple[type[BaseException], str], ...] = (
    (NoSuchSessionError, "NoSuchSession"),
    (NoSuchJobError, "NoSuchJob"),
    (NotResumedError, "NotResumed"),
    (AccessDeniedError, "AccessDenied"),
)


def dbus_error_for(exc: BaseException, method: str) -> tuple[str, str]:
    """Return the D-Bus ``(error name, message)`` answering ``exc`` raised by ``method``.

    Mapped errors carry their own message; anything else is ``Error.Internal``
    with a generic message, and the traceback goes to the log only.
    """
    for exc_type, name in ERROR_TABLE:
        if isinstance(exc, exc_type):
            return error_name(name), str(exc)
    logger.error("Internal error while handling %s", method, exc_info=exc)
    return error_name("Internal"), f"internal error in {method}"
