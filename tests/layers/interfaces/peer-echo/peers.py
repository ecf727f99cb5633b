"""Test-only peer endpoint: sets ``endpoint.<name>.joined`` via charms.reactive's Endpoint."""
from charms.reactive import Endpoint


class PeerEchoPeers(Endpoint):
    """All behaviour comes from charms.reactive.Endpoint (flags, to_publish, received)."""
