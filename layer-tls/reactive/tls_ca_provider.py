"""layer:tls reactive handlers for the ``ca-certificates`` endpoint (tls-certificates,
requires): the application CA as an intermediate signed by a related provider.

Thin glue to ``charms.layer.tls.ca_provider``. A charm whose operator relates no
provider never runs these handlers (their flags are never set), so nothing changes for
it. While a provider is related, one handler runs per hook; it returns at once on
non-leaders and in hooks where nothing can have changed (flags and unitdata only).
"""
from charms.reactive import clear_flag, set_flag, when, when_not

GONE_NOTED = "layer.tls.ca-provider.gone-noted"


def _endpoints():
    from charms.reactive import endpoint_from_name

    return endpoint_from_name("certificates"), endpoint_from_name("ca-certificates")


@when("endpoint.ca-certificates.joined")
def ca_from_provider():
    """Leader: ask the provider for the CA, verify its answer, move to it, renew it."""
    from charms.layer.tls import ca_provider

    clear_flag(GONE_NOTED)
    tls, ep = _endpoints()
    if tls is None or ep is None or not tls.has_peer_relation or not tls.is_leader:
        return
    if not ca_provider.worth_looking(tls):
        return
    from charms.layer.tls import settings

    ca_provider.reconcile(tls, ep, settings.load())
    for flag in ca_provider.CHANGED_FLAGS:
        clear_flag(flag)


@when("endpoint.ca-certificates.broken")
@when_not(GONE_NOTED)
def ca_provider_gone():
    """Leader: the provider went away; keep the CA, say until when it serves (once)."""
    from charms.layer.tls import ca_provider

    set_flag(GONE_NOTED)
    tls, _ = _endpoints()
    if tls is None or not tls.has_peer_relation or not tls.is_leader:
        return
    from charms.layer.tls import settings

    ca_provider.provider_gone(tls, settings.load())
