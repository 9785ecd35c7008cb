"""Check that every current consent state is what the ledger says (and optionally fix it).

    manage.py consent_check_state            # report; exit status 1 when states drifted
    manage.py consent_check_state --repair   # rewrite the drifted states from the ledger (audited)
"""
from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from cdp.actors import Actor
from consent.selectors import consent_state_drift
from consent.services import consent_states_repair

SHOWN = 50


class Command(BaseCommand):
    help = "Recompute the current consent states from the ledger and report (or --repair) any drift."

    def add_arguments(self, parser):
        parser.add_argument("--repair", action="store_true",
                            help="Rewrite the drifted states from the ledger, with an audit row.")

    def handle(self, *args, repair: bool = False, **options):
        drift = consent_state_drift()
        if not drift:
            self.stdout.write(_("Every consent state matches the ledger."))
            return
        for item in drift[:SHOWN]:
            self.stdout.write(_("%(kind)s: customer #%(profile)s, purpose #%(purpose)s (state #%(state)s, latest "
                                "ledger entry #%(record)s)") % {
                "kind": item.kind, "profile": item.profile_id, "purpose": item.purpose_id,
                "state": item.state_id or "—", "record": item.record_id or "—"})
        if len(drift) > SHOWN:
            self.stdout.write(_("… and %(count)s more.") % {"count": len(drift) - SHOWN})
        if not repair:
            raise CommandError(_("%(count)s consent states differ from the ledger; run with --repair to rewrite "
                                 "them from the ledger.") % {"count": len(drift)})
        counts = consent_states_repair(actor=Actor.system("consent_check_state"))
        self.stdout.write(_("Rewritten from the ledger: %(missing)s missing, %(different)s different, "
                            "%(unexpected)s removed.") % counts)
