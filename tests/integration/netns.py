"""Private networks of network namespaces for tests that need several hosts' addresses.

A Net is a bridge inside a namespace of its own (the "hub", where the code under test runs, at
<subnet>.1) and one namespace per peer, each joined to the bridge by a veth pair created straight
inside the namespaces: nothing is added to the root namespace, so the subnet cannot clash with
the host's or another test's (the Slurm harness uses 10.213/10.214 in the root namespace; these
use 10.219). Namespace names carry this process's pid: runs in parallel do not collide, and
namespaces left by a run that was killed (its pid gone) are removed by the next one.
Needs root and iproute2.
"""
import os
import re
import subprocess

PREFIX = "rst"  # runner store test
NAME = re.compile(rf"^{PREFIX}(\d+)-\w+$")


def ip(*args):
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def remove_stale():
    """Deletes namespaces of earlier runs whose process is gone."""
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        name = line.split()[0] if line.split() else ""
        m = NAME.match(name)
        if m and not os.path.exists(f"/proc/{m.group(1)}"):
            subprocess.run(["ip", "netns", "del", name], capture_output=True)


class Net:
    def __init__(self, tag, peers):
        """Namespaces <PREFIX><pid>-<tag>hub and one per name in `peers`; call close() (also when
        setting up fails half way: it removes what exists)."""
        self.namespaces = []
        try:
            self._build(tag, peers)
        except BaseException:
            self.close()
            raise

    def _build(self, tag, peers):
        self.subnet = f"10.219.{os.getpid() % 250}"
        self.hub = self._netns(f"{PREFIX}{os.getpid()}-{tag}hub")
        ip("-n", self.hub, "link", "set", "lo", "up")
        ip("-n", self.hub, "link", "add", "br0", "type", "bridge")
        ip("-n", self.hub, "addr", "add", f"{self.subnet}.1/24", "dev", "br0")
        ip("-n", self.hub, "link", "set", "br0", "up")
        self.hub_addr = f"{self.subnet}.1"
        self.peers = {}
        for i, peer in enumerate(peers, start=2):
            ns = self._netns(f"{PREFIX}{os.getpid()}-{tag}{peer}")
            ip("-n", ns, "link", "set", "lo", "up")
            ip("link", "add", "v" + str(i), "netns", self.hub, "type", "veth",
               "peer", "name", "eth0", "netns", ns)
            ip("-n", self.hub, "link", "set", "v" + str(i), "master", "br0", "up")
            ip("-n", ns, "addr", "add", f"{self.subnet}.{i}/24", "dev", "eth0")
            ip("-n", ns, "link", "set", "eth0", "up")
            self.peers[peer] = (ns, f"{self.subnet}.{i}")

    def _netns(self, name):
        ip("netns", "add", name)
        self.namespaces.append(name)
        return name

    def run_in(self, ns, cmd):
        return ["ip", "netns", "exec", ns, *cmd]

    def close(self):
        for name in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
        self.namespaces = []
