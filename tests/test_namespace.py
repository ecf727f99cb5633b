"""tls_permitted_names: parsing, what a namespace permits, bad entries, and the settings
and unit names built on it (namespace.py is pure: no cryptography, no Juju)."""
import ipaddress

import pytest
from charms.layer.tls import names, namespace, settings
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from tls_harness import deploy

AUTO = namespace.parse("auto")


def _settings(**config):
    return settings.Settings({}, lambda: config, "/charm", "tls")


# ------------------------------------------------------------------ parse


def test_auto_is_the_private_use_namespace():
    assert AUTO.dns_domains == namespace.AUTO_DOMAINS
    assert [str(n) for n in AUTO.networks] == list(namespace.AUTO_NETWORKS)
    assert not AUTO.unbounded
    assert namespace.parse(namespace.DEFAULT) == AUTO


def test_entries_are_domains_networks_and_addresses_space_or_comma_separated():
    space = namespace.parse("Example.COM., 10.1.0.0/16 192.0.2.7,fd00::/8  auto")
    assert space.dns_domains[0] == "example.com"
    assert set(namespace.AUTO_DOMAINS) <= set(space.dns_domains)
    nets = [str(n) for n in space.networks]
    assert nets[:3] == ["10.1.0.0/16", "192.0.2.7/32", "fd00::/8"]
    assert namespace.parse("auto auto") == AUTO  # duplicates collapse


def test_any_alone_is_unbounded():
    assert namespace.parse("any") is namespace.ANY
    assert namespace.parse(" ANY ").permits("pypi.org")
    assert namespace.ANY.describe() == "any"


@pytest.mark.parametrize("value, named", [
    ("", "no entry"),
    ("  , ", "no entry"),
    ("any auto", "only entry"),
    ("auto *.example.com", "'*.example.com' is a wildcard"),
    ("auto .example.com", "'.example.com' is not a DNS domain"),
    ("auto exa_mple.com", "'exa_mple.com' is not a DNS domain"),
    ("auto bücher.de", "'bücher.de' is not ASCII"),
    ("auto 10.1.2.3/8", "'10.1.2.3/8' has host bits set"),
    ("auto 10.0.0.0/33", "'10.0.0.0/33' is not an IP network"),
    ("auto 300.1.1.1", "'300.1.1.1' is not an IP network"),
    ("auto fd00::zz", "'fd00::zz' is not an IP network"),
    ("auto " + "a" * 64 + ".com", "is not a DNS domain"),
    (" ".join(["a.b"] * 65), "65 entries, over 64"),
    ("x" * 5000, "over 4096"),
])
def test_a_bad_value_is_refused_naming_the_entry(value, named):
    with pytest.raises(namespace.NamespaceError) as exc:
        namespace.parse(value)
    assert named in str(exc.value)
    assert named in namespace.problem(value)


def test_good_values_have_no_problem():
    for value in ("auto", "any", "internal", "10.0.0.0/8", "auto pypi.org 93.184.216.34"):
        assert namespace.problem(value) == ""


# ------------------------------------------------------------------ permits


@pytest.mark.parametrize("name", [
    "juju-abc-0.lxd", "LXD", "lxd.", "a.b.internal", "node.maas", "x.home.arpa", "host.lan",
    "10.9.9.9", "172.31.255.255", "192.168.1.1", "100.64.0.1", "fd12::1", "fc00::1",
])
def test_auto_permits_private_use_names(name):
    assert AUTO.permits(name)


@pytest.mark.parametrize("name", [
    "pypi.org", "archive.ubuntu.com", "juju-abc-0", "lxd.example.com", "notlxd", "xlxd",
    "arpa", "home.arpa.evil.com", "93.184.216.34", "8.8.8.8", "172.32.0.1", "127.0.1.1",
    "::1", "2001:db8::1", "::ffff:10.0.0.1", "", "   ", None, 10, b"lxd",
])
def test_auto_refuses_outside_names(name):
    assert not AUTO.permits(name)


def test_an_ipv4_network_does_not_permit_ipv6_and_a_single_address_only_itself():
    space = namespace.parse("192.0.2.7")
    assert space.permits("192.0.2.7") and not space.permits("192.0.2.8")
    assert not space.permits("::ffff:192.0.2.7")
    assert not space.permits("a.internal")  # no DNS domain at all


def test_not_within_names_what_the_other_namespace_does_not_cover():
    wider = namespace.parse("auto pypi.org 93.184.216.0/24")
    assert wider.not_within(AUTO) == ["pypi.org", "93.184.216.0/24"]
    assert AUTO.not_within(wider) == []
    assert namespace.parse("a.lxd 10.1.0.0/16").not_within(AUTO) == []
    assert namespace.parse("fd00::/8").not_within(namespace.parse("10.0.0.0/8")) == ["fd00::/8"]
    assert namespace.ANY.not_within(AUTO) == ["any"]
    assert AUTO.not_within(namespace.ANY) == []


# ------------------------------------------------------------------ fuzz

LABEL = st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?\Z")
# a domain whose labels are all digits reads as an address (no top-level domain is numeric)
DOMAIN = st.lists(LABEL, min_size=1, max_size=4).map(".".join).filter(
    lambda d: not d.replace(".", "").isdigit())


@given(st.text(max_size=300))
@hsettings(max_examples=300, deadline=None)
def test_parse_raises_only_namespace_error_and_permits_never_raises(text):
    try:
        space = namespace.parse(text)
    except namespace.NamespaceError:
        return
    space.permits(text)
    assert namespace.parse(space.describe()) == space  # describe round-trips


@given(DOMAIN, DOMAIN)
@hsettings(max_examples=200, deadline=None)
def test_a_domain_permits_itself_and_what_is_under_it_only(domain, other):
    space = namespace.parse(domain)
    assert space.permits(domain) and space.permits(f"x.{domain}") and space.permits(
        domain.upper() + ".")
    assert space.permits(other) == (other == domain or other.endswith("." + domain))
    assert not space.permits(f"x{domain}")  # a longer label is not under the domain


@given(st.ip_addresses(), st.integers(min_value=0, max_value=128))
@hsettings(max_examples=200, deadline=None)
def test_a_network_permits_exactly_its_addresses(address, prefix):
    prefix = min(prefix, address.max_prefixlen)
    network = ipaddress.ip_network(f"{address}/{prefix}", strict=False)
    space = namespace.parse(str(network))
    assert space.permits(str(address))
    assert space.permits(str(network.broadcast_address))
    outside = [ipaddress.ip_address(int(network.network_address) - 1)
               if int(network.network_address) > 0 else None]
    for ip in filter(None, outside):
        assert not space.permits(str(ip))


# ------------------------------------------------------------------ settings and names


def test_the_default_config_is_auto_and_a_bad_value_blocks_naming_it():
    assert _settings().namespace == AUTO and _settings().problem() is None
    problem = _settings(tls_permitted_names="auto *.corp").problem()
    assert problem == ("invalid config: tls_permitted_names: '*.corp' is a wildcard; write "
                       "the domain (it permits every name under it)")
    assert _settings(tls_permitted_names="auto *.corp").namespace == AUTO  # never wider


def test_an_extra_san_outside_the_namespace_blocks_and_none_is_used():
    s = _settings(tls_extra_sans="vip.internal pypi.org")
    assert s.problem() == ("invalid config: tls_extra_sans: 'pypi.org' is outside "
                           "tls_permitted_names")
    assert s.extra_sans == []
    s = _settings(tls_extra_sans="vip.internal pypi.org 93.184.216.34",
                  tls_permitted_names="auto pypi.org 93.184.216.34")
    assert s.problem() is None and s.extra_sans == ["vip.internal", "pypi.org", "93.184.216.34"]
    assert _settings(tls_extra_sans="pypi.org", tls_permitted_names="any").problem() is None


def test_unit_names_leave_out_what_the_namespace_does_not_permit():
    got = names.unit_names(["10.0.0.5", "93.184.216.34", "127.0.0.1"],
                           ["juju-abc-0", "juju-abc-0.lxd"], ["pypi.org", "svc.internal"],
                           ["vip.internal"], permits=AUTO.permits)
    assert got.dns_names == ["juju-abc-0.lxd", "svc.internal", "vip.internal"]
    assert got.ip_addresses == ["10.0.0.5"]
    everything = names.unit_names(["93.184.216.34"], ["juju-abc-0"], [], [])
    assert everything.dns_names == ["juju-abc-0"] and everything.ip_addresses == ["93.184.216.34"]


def test_a_unit_without_a_name_inside_the_namespace_says_so(tmp_path, secrets, hostnames):
    # 10.0.0.x and host-tls-N.lxd are all outside example.com: no unit has a name to ask for
    juju, rid, units = deploy(tmp_path, secrets, units=2,
                              config={"tls_permitted_names": "example.com"})
    for unit in units:
        assert juju.status(unit) == ("blocked", "none of this unit's addresses and host "
                                     "names is inside tls_permitted_names")
