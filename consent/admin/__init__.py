from . import ledger, requests  # noqa: F401  (registers the admin classes)
