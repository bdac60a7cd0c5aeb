"""A throwaway multi-host lab made of Linux network namespaces, for tests run as root.

Topology (every name carries the per-run tag ``aio<pid>``)::

    root namespace (the test process)        switch namespace "<tag>-sw"
      r<tag>  10.231.<k>.1/24  ---- veth ---- up0 -+
                                                   +- bridge "br-<tag>" (no address)
    host namespace "<tag>-<h>"                     |
      eth0    10.231.<k>.<2+i>/24 -- veth --- p-<h> -+

The bridge lives in a namespace of its own rather than in the root namespace, so
bridged frames never meet the root namespace's firewall (``br_netfilter`` hands
bridged traffic to iptables' FORWARD chain, which many hosts set to DROP).  The
only thing added to the root namespace is one veth whose route covers the lab's
/24 and nothing else; the namespaces get no default route and no IPv6, so no
packet can leave the lab.  ``cut(h)`` takes the switch port of host ``h`` down,
like pulling its cable; ``restore(h)`` plugs it back.

``Lab.close()`` removes everything it created (processes still inside its
namespaces included), and is safe to call after a partial ``create()``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time

IP = shutil.which("ip") or "/usr/sbin/ip"
#: The lab uses 10.231.<k>.0/24 for one k that nothing on this machine routes yet.
NET_PREFIX = "10.231"
_TAG_RE = re.compile(r"^aio(\d+)-(?:sw|[a-z])$")
_ROOT_LINK_RE = re.compile(r"^raio(\d+)$")


class LabUnavailable(Exception):
    """This machine cannot host a lab (not root, no iproute2, no namespaces, ...)."""


def unavailable_reason() -> str | None:
    """Why a lab cannot be built here, or None when it can be tried."""
    if not sys.platform.startswith("linux"):
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "creating network namespaces (ip netns add) needs root"
    if not os.access(IP, os.X_OK):
        return f"iproute2 is not installed ({IP} not found)"
    return None


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [IP, *args], capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL
    )
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed: {done.stderr.strip() or done.stdout}")
    return done


def _pid_alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(") ", 1)[1][:1] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def _netns_names() -> list[str]:
    out = _ip("netns", "list", check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _root_links() -> list[str]:
    out = _ip("-o", "link", "show", check=False).stdout
    names = []
    for line in out.splitlines():
        parts = line.split(":", 2)
        if len(parts) >= 2:
            names.append(parts[1].strip().split("@", 1)[0])
    return names


def sweep_stale() -> None:
    """Remove labs left by earlier runs whose test process is gone (killed with SIGKILL)."""
    for name in _netns_names():
        found = _TAG_RE.match(name)
        if found and not _pid_alive(int(found.group(1))):
            _ip("netns", "del", name, check=False)
    for name in _root_links():
        found = _ROOT_LINK_RE.match(name)
        if found and not _pid_alive(int(found.group(1))):
            _ip("link", "del", name, check=False)


def _write_sysctl(netns: str | None, path: str, value: str) -> None:
    """Write a /proc/sys file inside ``netns`` (or here); a missing file is ignored."""
    script = f"[ -e {path} ] && echo {value} > {path}; true"
    argv = ["sh", "-c", script]
    if netns is not None:
        argv = [IP, "netns", "exec", netns, *argv]
    subprocess.run(argv, capture_output=True, timeout=20, check=True, stdin=subprocess.DEVNULL)


class Lab:
    """Hosts in network namespaces on one private /24, reachable from the test process."""

    def __init__(self, hosts: list[str], tag: str | None = None) -> None:
        if not hosts or len(hosts) > 20:
            raise ValueError("a lab has 1 to 20 hosts")
        for host in hosts:
            if not re.fullmatch(r"[a-z]", host):
                raise ValueError(f"host names are single lowercase letters, got {host!r}")
        self.tag = tag or f"aio{os.getpid()}"
        self.hosts = list(hosts)
        self.switch = f"{self.tag}-sw"
        self.bridge = f"br-{self.tag}"
        self.root_link = f"r{self.tag}"
        for name in (self.bridge, self.root_link):
            if len(name) > 15:
                raise ValueError(f"interface name {name!r} is longer than 15 characters")
        self.subnet = -1
        self._created_netns: list[str] = []
        self._root_link_created = False

    # -- names and addresses -------------------------------------------------------------

    def netns(self, host: str) -> str:
        return f"{self.tag}-{host}"

    def address(self, host: str) -> str:
        """The host's IPv4 address; the test process itself is ``.1``."""
        return f"{NET_PREFIX}.{self.subnet}.{2 + self.hosts.index(host)}"

    @property
    def gateway(self) -> str:
        """The test process's own address on the lab network."""
        return f"{NET_PREFIX}.{self.subnet}.1"

    def exec_argv(self, host: str, argv: list[str]) -> list[str]:
        """``argv`` run inside the host's namespace (``ip netns exec`` execs it in place)."""
        return [IP, "netns", "exec", self.netns(host), *argv]

    # -- building --------------------------------------------------------------------------

    def _pick_subnet(self) -> int:
        used = _ip("-4", "-o", "addr", "show", check=False).stdout
        used += _ip("-4", "route", "show", "table", "all", check=False).stdout
        start = os.getpid() % 250 + 1
        for i in range(250):
            k = (start + i) % 250 + 1
            if f"{NET_PREFIX}.{k}." not in used:
                return k
        raise LabUnavailable(f"every {NET_PREFIX}.k.0/24 is already in use on this machine")

    def _add_netns(self, name: str) -> None:
        if name in _netns_names():  # our tag, so a leftover of a process with our pid
            _ip("netns", "del", name, check=False)
        done = _ip("netns", "add", name, check=False)
        if done.returncode != 0:
            raise LabUnavailable(f"ip netns add failed: {done.stderr.strip()}")
        self._created_netns.append(name)
        # No IPv6 at all (no link-local chatter), then loopback up.
        for key in ("all", "default"):
            _write_sysctl(name, f"/proc/sys/net/ipv6/conf/{key}/disable_ipv6", "1")
        _ip("-n", name, "link", "set", "lo", "up")

    def create(self) -> Lab:
        sweep_stale()
        self.subnet = self._pick_subnet()
        self._add_netns(self.switch)
        done = _ip("-n", self.switch, "link", "add", self.bridge, "type", "bridge", check=False)
        if done.returncode != 0:
            raise LabUnavailable(f"cannot create a Linux bridge: {done.stderr.strip()}")
        _ip("-n", self.switch, "link", "set", self.bridge, "up")

        if self.root_link in _root_links():
            _ip("link", "del", self.root_link, check=False)
        done = _ip("link", "add", self.root_link, "type", "veth",
                   "peer", "name", "up0", "netns", self.switch, check=False)
        if done.returncode != 0:
            raise LabUnavailable(f"cannot create a veth pair: {done.stderr.strip()}")
        self._root_link_created = True
        _write_sysctl(None, f"/proc/sys/net/ipv6/conf/{self.root_link}/disable_ipv6", "1")
        _ip("-n", self.switch, "link", "set", "up0", "master", self.bridge, "up")
        _ip("addr", "add", f"{self.gateway}/24", "dev", self.root_link)
        _ip("link", "set", self.root_link, "up")
        routes = _ip("-4", "route", "show", f"{NET_PREFIX}.{self.subnet}.0/24",
                     "table", "all", check=False).stdout
        others = [r for r in routes.splitlines() if r.strip() and self.root_link not in r]
        if others:
            raise RuntimeError(f"{NET_PREFIX}.{self.subnet}.0/24 is routed elsewhere too: {others}")

        for host in self.hosts:
            ns = self.netns(host)
            self._add_netns(ns)
            port = f"p-{host}"
            _ip("-n", self.switch, "link", "add", port, "type", "veth",
                "peer", "name", "eth0", "netns", ns)
            _ip("-n", self.switch, "link", "set", port, "master", self.bridge, "up")
            _ip("-n", ns, "addr", "add", f"{self.address(host)}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
        return self

    # -- faults ------------------------------------------------------------------------------

    def cut(self, host: str) -> None:
        """Pull the host's cable: its switch port goes down, nothing reaches it or leaves it."""
        _ip("-n", self.switch, "link", "set", f"p-{host}", "down")

    def restore(self, host: str) -> None:
        _ip("-n", self.switch, "link", "set", f"p-{host}", "up")

    # -- teardown ----------------------------------------------------------------------------

    def pids(self, host: str) -> list[int]:
        """Processes running inside the host's namespace."""
        out = _ip("netns", "pids", self.netns(host), check=False).stdout
        return [int(p) for p in out.split() if p.isdigit()]

    def close(self) -> None:
        """Kill what still runs in the lab, then delete its links and namespaces."""
        errors = []
        leftovers = []
        for ns in self._created_netns:
            out = _ip("netns", "pids", ns, check=False).stdout
            leftovers.extend(int(p) for p in out.split() if p.isdigit())
        for pid in leftovers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while any(_pid_alive(p) for p in leftovers) and time.monotonic() < deadline:
            time.sleep(0.02)
        if self._root_link_created and self.root_link in _root_links():
            done = _ip("link", "del", self.root_link, check=False)
            if done.returncode != 0:
                errors.append(done.stderr.strip())
        for ns in reversed(self._created_netns):
            done = _ip("netns", "del", ns, check=False)
            if done.returncode != 0 and ns in _netns_names():
                errors.append(done.stderr.strip())
        self._created_netns.clear()
        self._root_link_created = False
        if errors:
            raise RuntimeError(f"lab {self.tag} cleanup failed: {errors}")
