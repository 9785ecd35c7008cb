"""Writes of the campaigns app: deciding runs (the outbox), sending, receipts, and the
campaign's life (launch, approval, pause, resume, cancel). Import from the submodules."""
