"""The baseline charm's only handler: mark the unit started once (no hook tool call)."""
from charms.reactive import set_flag, when_not


@when_not("baseline.started")
def started():
    set_flag("baseline.started")
