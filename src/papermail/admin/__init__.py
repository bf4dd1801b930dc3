"""What the admin command line does, as plain functions over a Session (the commands only adapt)."""


class AdminError(Exception):
    """An admin operation can't be done; the message is the one line to show the operator."""


class NotFound(AdminError, LookupError):
    """No such subscriber, delivery or digest."""


class Refused(AdminError):
    """Doing it would break a promise (mail someone who opted out); the message says which."""
