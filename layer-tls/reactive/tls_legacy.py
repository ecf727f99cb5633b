"""layer:tls: adopt the PKI of the legacy easy-rsa layer after ``juju upgrade-charm``.

Thin glue; the work is in ``charms.layer.tls.legacy``. It runs in the hook phase of
charms.reactive (before any flag handler), so a leader adopts the legacy CA before the
signing handler could make a new one. It runs first in ``upgrade-charm`` and again in the
following hooks until the adoption is done here (``tls.legacy.adopted``); a charm that
never had the legacy layer pays one ``os.path.isdir`` in its first hook, then a flag check.
"""
from charms.reactive import hook, is_flag_set, set_flag

ADOPTED = "tls.legacy.adopted"


@hook("upgrade-charm", "config-changed", "start", "update-status", "leader-elected",
      "leader-settings-changed", "certificates-relation-{joined,changed,departed}")
def adopt_legacy_pki(*_endpoint):
    """Keep the legacy key (every unit) and CA and certificates (leader)."""
    if is_flag_set(ADOPTED):
        return
    from charmhelpers.core import hookenv
    from charms.layer.tls import legacy

    if legacy.find_pki_dir(hookenv.charm_dir()) is None:
        set_flag(ADOPTED)  # no legacy PKI here: the common case, settled for good
        return
    from charms.layer.tls import settings
    from charms.reactive import endpoint_from_name

    current = settings.load()
    problem = current.problem()
    if problem:  # adopting may make a CA, whose lifetime is config: wait for a good one
        hookenv.log(f"layer:tls: legacy PKI adoption waits for a valid config: {problem}",
                    hookenv.WARNING)
        return
    if legacy.adopt(endpoint_from_name("certificates"), current):
        set_flag(ADOPTED)
