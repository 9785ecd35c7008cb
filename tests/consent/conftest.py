import pytest


@pytest.fixture(autouse=True)
def states_stay_derived_from_the_ledger(request):
    """After every consent test the current states are exactly what the ledger says
    (consent_state_drift finds nothing), whatever the test did through the services.
    Modules that create drift on purpose set STATE_DRIFT_ON_PURPOSE; tests that commit
    (transactional) are left out."""
    marker = request.node.get_closest_marker("django_db")
    transactional = marker is not None and (marker.kwargs.get("transaction") or {
        "transactional_db", "seeded_transactional_db", "live_server"} & set(request.fixturenames))
    if marker is None or transactional or getattr(request.module, "STATE_DRIFT_ON_PURPOSE", False):
        yield
        return
    request.getfixturevalue("db")  # set up first, so torn down (rolled back) after the check
    yield
    from consent.selectors import consent_state_drift

    assert consent_state_drift() == [], "the current consent states drifted from the ledger"
