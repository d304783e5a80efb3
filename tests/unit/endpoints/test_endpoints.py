"""The SSRF guard for partner endpoints: every address a host resolves to is checked, in
every form an internal address can take; the local runtime sends to loopback only."""

from __future__ import annotations

import pytest

from switchboard_core.endpoints import EndpointRefused, check_endpoint

PUBLIC = ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]
INTERNAL = [
    "127.0.0.1",
    "127.8.9.10",
    "10.0.0.5",
    "172.16.0.1",
    "192.168.1.20",
    "169.254.169.254",  # the instance metadata service
    "169.254.170.2",  # the ECS task metadata endpoint
    "100.64.0.1",  # carrier-grade NAT
    "0.0.0.0",  # noqa: S104 - an address to refuse, not one to bind
    "224.0.0.1",
    "240.0.0.1",
    "255.255.255.255",
    "192.0.2.10",  # documentation
    "::1",
    "::",
    "fe80::1",
    "fd00:ec2::254",  # the metadata service over IPv6 (Nitro)
    "fc00::1",
    "ff02::1",
    "::ffff:127.0.0.1",  # IPv4-mapped forms of internal addresses
    "::ffff:169.254.169.254",
    "::ffff:10.0.0.1",
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
    "2002:c0a8:101::1",  # 6to4 of 192.168.1.1
    "192.0.0.192",  # IETF protocol assignments, "global" to Python 3.11 but not to 3.14
    "192.88.99.1",  # the deprecated 6to4 relay anycast
    "3fff::1",  # IPv6 documentation (RFC 9637)
]


def resolver(answers: dict[str, list[str]]):
    def resolve(host: str, port: int) -> list[str]:
        if host not in answers:
            raise OSError(f"no such host {host}")
        return answers[host]

    return resolve


@pytest.mark.parametrize("address", PUBLIC)
def test_a_public_endpoint_is_accepted_with_the_addresses_to_connect_to(address):
    checked = check_endpoint(
        "https://hooks.partner.example/in?x=1", local=False, resolve=resolver({"hooks.partner.example": [address]})
    )
    assert checked.addresses == (address,) and checked.host == "hooks.partner.example" and checked.port == 443


@pytest.mark.parametrize("address", INTERNAL)
def test_an_internal_address_is_refused_by_name_and_as_a_literal(address):
    with pytest.raises(EndpointRefused) as refused:
        check_endpoint("https://innocent.example/hook", local=False, resolve=resolver({"innocent.example": [address]}))
    assert refused.value.status == 400 and refused.value.code == "endpoint_refused"
    assert refused.value.body()["error"]["details"]["problems"][0]["field"] == "url"
    literal = f"[{address}]" if ":" in address else address
    with pytest.raises(EndpointRefused):
        check_endpoint(f"https://{literal}/hook", local=False, resolve=resolver({}))


def test_one_internal_address_among_public_ones_refuses_the_host():
    # A host that resolves to a public and a private address could be connected to either.
    with pytest.raises(EndpointRefused, match=r"10\.0\.0\.7"):
        check_endpoint(
            "https://mixed.example/", local=False, resolve=resolver({"mixed.example": ["93.184.215.14", "10.0.0.7"]})
        )


def test_numeric_host_forms_are_judged_by_what_they_resolve_to():
    # "2130706433" and "0x7f.1" are 127.0.0.1 to the system resolver; the check sees the address.
    for host in ("2130706433", "0x7f.1", "017700000001"):
        with pytest.raises(EndpointRefused, match="loopback"):
            check_endpoint(f"https://{host}/", local=False, resolve=resolver({host: ["127.0.0.1"]}))


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://hooks.partner.example/", "scheme must be https"),
        ("ftp://hooks.partner.example/", "scheme must be https"),
        ("https://user:pw@hooks.partner.example/", "credentials in the URL"),
        ("https:///path-only", "no host"),
        ("https://hooks.partner.example:99999/", "not a URL"),
        ("https://hooks.partner.example/#top", "fragment"),
        ("https://unknown.example/", "does not resolve"),
        ("https://empty.example/", "resolves to no address"),
        ("https://hooks.partner.example/" + "a" * 2100, "longer than"),
        ("not a url at all", "scheme must be https"),
    ],
)
def test_malformed_or_unsafe_urls_are_refused_naming_the_problem(url, problem):
    answers = {"hooks.partner.example": PUBLIC[:1], "empty.example": []}
    with pytest.raises(EndpointRefused, match=problem):
        check_endpoint(url, local=False, resolve=resolver(answers))


def test_the_local_runtime_sends_to_loopback_only():
    answers = {"localhost": ["127.0.0.1", "::1"], "hooks.partner.example": PUBLIC[:1], "lan.example": ["192.168.1.5"]}
    checked = check_endpoint("http://localhost:8099/hook", local=True, resolve=resolver(answers))
    assert checked.addresses == ("127.0.0.1", "::1") and checked.port == 8099
    assert check_endpoint("http://127.0.0.1:9/x", local=True, resolve=resolver({})).addresses == ("127.0.0.1",)
    for url in ("https://hooks.partner.example/", "http://lan.example/", "http://[::ffff:10.0.0.1]/"):
        with pytest.raises(EndpointRefused, match="not a loopback address"):
            check_endpoint(url, local=True, resolve=resolver(answers))
