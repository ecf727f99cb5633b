"""layer:tls reactive handlers: thin glue from interface:tls flags to charms.layer.tls.

The work lives in ``charms.layer.tls.unit`` (key, CSR, installing the certificate) and
``charms.layer.tls.leader`` (CA, batch signing). Imports of those modules are inside the
handlers, so a hook in which nothing fires does not load ``cryptography``.

Flags set here for upper layers (see README.md): ``tls.ca.available``,
``tls.certificate.available``, ``tls.certificate.changed`` (the upper layer clears it after
reloading its workload) and the legacy flags of the easy-rsa layer.

The CA bundle the units trust is sent on the certificate_transfer endpoint (layer option
``transfer_endpoint``, ``send-ca-cert`` by default) at the end of every hook where it
changed (``charms.layer.tls.transfer``).

The actions are not handlers: ``actions/<name>`` runs ``charms.layer.tls.actions.main``,
which runs that action only (Juju gives an action no hook name, and no handler may fire
inside an action).
"""
from charmhelpers.core import hookenv, unitdata
from charms.reactive import clear_flag, set_flag, when, when_not


def _settings():
    from charms.layer.tls import settings

    return settings.load()


@when("create certificate signing request")
def publish_certificate_request(tls):
    """Every unit, leader included: publish a CSR (the key is made once, kept here)."""
    from charms.layer.tls import unit

    unit.request_certificate(tls, _settings())


@when("sign certificate signing request")
def sign_certificate_requests(tls):
    """Leader: check and sign every pending CSR in one batch, publish once."""
    from charms.layer.tls import leader, status

    settings = _settings()
    outcome = leader.sign_pending(tls, settings)
    unitdata.kv().set(status.LEADER_BLOCKED, outcome.blocked)
    if not settings.problem():
        # cryptography is loaded here anyway: judge the CA's name constraints now (a CA
        # made in this hook included), so the next quiet update-status need not load it
        leader.check_namespace(tls, settings)


@when("tls.peers.departed")
def forget_departed_units(tls):
    """Leader: departed units' certificates leave the application data."""
    from charms.layer.tls import leader

    if tls.is_leader:
        leader.drop_departed(tls)
    clear_flag("tls.peers.departed")


@when("signed certificate available")
def install_certificate(tls):
    """Install this unit's certificate and the CA bundle once they check out; one that
    arrived expired (or not valid yet) blocks and brings a new request."""
    from charms.layer.tls import status, unit

    settings = _settings()
    unit.install_certificate(tls, settings)
    status.check_received(tls, settings)


@when("tls.certificate.available")
@when_not("signed certificate available")
def install_ca_bundle():
    """A unit waiting for its new certificate (renewal, rotation, new names) still takes a
    new CA bundle and acknowledges it in a CA rollover, else the rollover would wait for it
    while it waits for the rollover. Text comparison only unless the bundle changed."""
    from charms.layer.tls import unit
    from charms.reactive import endpoint_from_name

    tls = endpoint_from_name("certificates")
    if tls is not None and tls.has_peer_relation and unit.bundle_to_install(tls):
        unit.install_certificate(tls, _settings())


NAME_CHECK_HOOKS = ("config-changed", "upgrade-charm", "update-status")


@when_not("layer.tls.disabled")
def unit_and_ca_duties():
    """Every hook, in this order (one handler, one ``Invoking`` log line: charms.reactive
    logs one per handler it runs, and on Juju each is a hook-tool call):

    1. in config-changed, upgrade-charm and update-status, the name check (``_check_names``);
    2. with a certificate and no request outstanding, a renewal once it is due
       (``_renew_when_due``);
    3. with the peer relation, the CA duties (``_ca_duties``);

    and registers ``_end_of_hook`` to run after every handler. Each reads unitdata and
    compares text unless something changed or is due, so a quiet hook loads no
    ``cryptography``. Flags set here (a new request) bring their handlers in the next
    iteration of the same dispatch."""
    from charms.reactive import endpoint_from_name, get_unset_flags

    if not hookenv.cache.get(_END_OF_HOOK_REGISTERED):
        hookenv.cache[_END_OF_HOOK_REGISTERED] = True
        hookenv.atexit(_end_of_hook)
    settings = _settings()
    tls = endpoint_from_name("certificates")
    if hookenv.hook_name() in NAME_CHECK_HOOKS:
        _check_names(tls, settings)
    # one read of the flags (charms.reactive reads them all from unitdata for each test)
    unset = get_unset_flags("tls.certificate.available", "create certificate signing request")
    if unset == ["create certificate signing request"]:
        _renew_when_due(tls, settings)
    if tls is not None and tls.has_peer_relation:
        _ca_duties(tls, settings)


def _check_names(tls, settings) -> None:
    """Ask for a new certificate when the unit's addresses, host names or extra SANs
    changed since the last CSR (the order of names never matters). Addresses are looked
    up again only in config-changed and upgrade-charm: Juju runs config-changed when
    they change, so update-status checks the other names without a hook tool."""
    from charms.layer.tls import status, unit

    problem = settings.problem()
    unitdata.kv().set(status.CONFIG_PROBLEM, problem)
    if problem:
        return
    unit.update_renewal_time(settings)
    if tls is not None and tls.has_peer_relation and tls.is_leader:
        from charms.layer.tls import leader

        leader.check_namespace(tls, settings)  # the CA's name constraints cover the config?
    refresh = hookenv.hook_name() != "update-status"
    if tls is not None and tls.own_csr() and unit.names_changed(settings,
                                                               refresh_addresses=refresh):
        hookenv.log("layer:tls: this unit's names changed; requesting a new certificate")
        tls.request_new_csr()


def _renew_when_due(tls, settings) -> None:
    """Ask for a new certificate (new key) once the renew fraction of its lifetime has
    passed; the check reads unitdata only, so it costs nothing in a quiet hook."""
    from charms.layer.tls import unit

    if unit.renewal_due():
        unit.renew_certificate(tls, settings)


def _ca_duties(tls, settings) -> None:
    """Leader: advance a running CA rollover, start one on update-status when the CA has
    lived its configured fraction, and publish one CRL per CA of the bundle (when the
    revoked list or the CAs changed, or once tls_renew_fraction of a CRL's validity
    passed). Every unit with a CA: write the verified CRLs to ``crl_path`` and make a new
    key and request when its own certificate was revoked."""
    from charms.layer.tls import revocation, unit
    from charms.reactive import is_flag_set

    if tls.is_leader:
        _rollover_duties(tls, settings)
        revocation.maintain_crls(tls, settings)
    if is_flag_set("tls.ca.available"):
        unit.install_crls(tls, settings)
        if not tls.is_leader:
            unit.rotate_if_revoked(tls, settings)


def _rollover_duties(tls, settings) -> None:
    from charms.layer.tls import ca_store, leader, operator_ca, status

    kv = unitdata.kv()
    try:
        running = leader.switch_running(tls)
        if operator_ca.wanted(settings):
            # tls_ca_secret set, changed, cleared or given a new revision (operator_ca)
            if running or settings.problem():
                if not kv.get(operator_ca.PENDING):  # after the rollover / a valid config
                    kv.set(operator_ca.PENDING, True)
            else:
                started = operator_ca.reconcile(tls, settings)
                if started:
                    kv.set(status.LEADER_ROLLOVER, started)
                    return
        due = not running and hookenv.hook_name() == "update-status" and leader.rollover_due(tls)
        if due:
            from charms.layer.tls import ca_provider

            due = not ca_provider.renews_ca(settings)  # a related CA provider renews the CA
        if not running and not due:
            if kv.get(status.LEADER_ROLLOVER) is not None:
                kv.set(status.LEADER_ROLLOVER, None)  # written once, not in every quiet hook
            leader.publish_legacy_setting(tls)  # a CA made in an earlier hook
            return
        if settings.problem():
            return  # a rollover needs the lifetimes; the status shows the config problem
        if running:
            phase = leader.rollover_step(tls, settings)
            leader.check_namespace(tls, settings)  # the new CA's constraints
            kv.set(status.LEADER_BLOCKED, None)
            kv.set(status.LEADER_ROLLOVER, leader.rollover_status(phase))
        elif operator_ca.noted(tls):
            pass  # the operator's CA, said already: the status shows when it ends
        elif leader.stored_source() == operator_ca.SOURCE:
            operator_ca.note_near_end(tls, settings)  # never replaced behind their back
        else:
            leader.start_rollover(tls, settings, "the CA reached tls_ca_rollover_fraction")
            kv.set(status.LEADER_ROLLOVER, leader.rollover_status("started"))
    except ca_store.CAUnavailable as exc:
        hookenv.log(f"layer:tls: CA rollover paused: {exc}", hookenv.ERROR)
        kv.set(status.LEADER_BLOCKED, str(exc))


@when("tls.client.authorization.required")
@when_not("tls.client.authorization.added")
def client_authorization():
    """Every certificate already carries clientAuth: answer the legacy request at once."""
    set_flag("tls.client.authorization.added")


_END_OF_HOOK_REGISTERED = "layer.tls.end-of-hook-registered"


def _end_of_hook():
    """At the end of the hook, after every handler ran (a CA rollover may have changed
    the bundle in this very hook): send the trust bundle to the related applications on
    the certificate_transfer endpoint where it changed (see transfer.py), then set the
    workload status."""
    from charms.layer.tls import status, transfer

    transfer.send_trust_bundle()
    status.update()
