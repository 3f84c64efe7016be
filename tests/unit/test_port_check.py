"""One check that a port is free, with each caller's words: a managed server's (the default) and `tuibench web`'s."""

import socket

import pytest

from tuibench.core.errors import UserError
from tuibench.servers.managed import check_port_free

WEB = "cannot serve on {host}:{port} ({reason}): pick another with --port"


@pytest.fixture
def taken_port():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


def test_a_free_port_passes_on_either_host():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    check_port_free(port)
    check_port_free(port, "0.0.0.0")  # noqa: S104 - only bound for the check


def test_a_busy_port_is_one_line_in_each_callers_words(taken_port):
    with pytest.raises(UserError) as managed:
        check_port_free(taken_port)
    assert str(managed.value) == \
        f"port {taken_port} on 127.0.0.1 is already in use: pick another with --port, or leave it out"
    with pytest.raises(UserError) as web:
        check_port_free(taken_port, "127.0.0.1", WEB)
    assert str(web.value) == \
        f"cannot serve on 127.0.0.1:{taken_port} (Address already in use): pick another with --port"


def test_a_host_that_is_not_this_machines_gives_the_systems_reason():
    with pytest.raises(UserError, match=r"cannot serve on 192\.0\.2\.1:8000 \(Cannot assign requested address\)"):
        check_port_free(8000, "192.0.2.1", WEB)  # TEST-NET-1: never a local address


@pytest.mark.skipif(not socket.has_ipv6, reason="no IPv6 here")
def test_an_ipv6_host_is_probed_as_ipv6():
    try:
        with socket.socket(socket.AF_INET6) as taken:
            taken.bind(("::1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            with pytest.raises(UserError, match=rf"cannot serve on ::1:{port} \(Address already in use\)"):
                check_port_free(port, "::1", WEB)
    except OSError as exc:  # a container without ::1
        pytest.skip(f"no ::1 here: {exc}")
