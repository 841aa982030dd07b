"""The servers under measurement and the machine around them: their memory and CPU,
and the CPU anything else took meanwhile (which skews every figure)."""

from __future__ import annotations

import os
import resource
import time

from bench.settings import STOP_TIMEOUT_SECONDS, BenchError
from tests.support import ServerProcess

# CPU used by processes other than the harness, its servers and wrk, as a share of the
# whole machine: above this the figures are skewed (both servers and wrk lose CPU to it).
NOISY_SHARE = 0.05
SETTLE_TIMEOUT_SECONDS = 30
SETTLE_WINDOW_SECONDS = 0.5
SETTLE_IDLE_SHARE = 0.05  # of one core: "idle" for a server between phases


class MeasuredServer(ServerProcess):
    """A server process (tests/support) whose memory and CPU the bench reads."""

    def rss_kib(self) -> int:
        with open(f"/proc/{self.proc.pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise BenchError(f"no VmRSS for {self.name}")

    def cpu_seconds(self) -> float:
        """User + system CPU time the process has used so far, all threads."""
        return self._cpu_seconds(f"/proc/{self.proc.pid}/stat")

    @staticmethod
    def _cpu_seconds(stat_path: str) -> float:
        with open(stat_path, encoding="ascii") as stat:
            # The command name, field 2, may hold spaces: count the fields after its ')'.
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def thread_cpu_seconds(self) -> dict[str, float]:
        """CPU seconds of the main thread (the event loop) and of all the other threads."""
        split = {"event_loop": 0.0, "other_threads": 0.0}
        for tid in os.listdir(f"/proc/{self.proc.pid}/task"):
            try:
                used = self._cpu_seconds(f"/proc/{self.proc.pid}/task/{tid}/stat")
            except OSError:
                continue  # the thread ended meanwhile
            split["event_loop" if int(tid) == self.proc.pid else "other_threads"] += used
        return split

    def settle(self) -> float:
        """Waits (bounded) until the process is about idle; returns how long that took.
        When wrk stops, the server may still have work queued (logins waiting for a
        bcrypt thread): the next phase should not pay for it."""
        started = time.monotonic()
        while time.monotonic() - started < SETTLE_TIMEOUT_SECONDS:
            before = self.cpu_seconds()
            time.sleep(SETTLE_WINDOW_SECONDS)
            if self.cpu_seconds() - before <= SETTLE_IDLE_SHARE * SETTLE_WINDOW_SECONDS:
                break
        return round(time.monotonic() - started, 2)

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> int:
        try:
            return super().stop(timeout)
        finally:
            self.close()


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of all cores since boot, from /proc/stat."""
    with open("/proc/stat", encoding="ascii") as stat:
        # cpu  user nice system idle iowait irq softirq steal [guest guest_nice: already in user]
        ticks = [int(t) for t in stat.readline().split()[1:9]]
    hz = os.sysconf("SC_CLK_TCK")
    return (sum(ticks) - ticks[3] - ticks[4]) / hz, sum(ticks) / hz


def own_cpu_seconds(servers: list[MeasuredServer]) -> float:
    """CPU of this process, of its finished children (every wrk) and of the live servers."""
    mine = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (mine.ru_utime + mine.ru_stime + children.ru_utime + children.ru_stime
            + sum(server.cpu_seconds() for server in servers))


class CpuNoise:
    """Measures the CPU that processes outside the benchmark took while it ran."""

    def __init__(self):
        self._busy, self._total = machine_cpu_seconds()
        self._own = own_cpu_seconds([])

    def other_share(self, servers: list[MeasuredServer]) -> float:
        busy, total = machine_cpu_seconds()
        other = (busy - self._busy) - (own_cpu_seconds(servers) - self._own)
        return round(max(0.0, other) / max(total - self._total, 1e-9), 3)


def busy_share_now(seconds: float = 1.0) -> float:
    """How busy the machine is right now, all cores together (0..1)."""
    busy, total = machine_cpu_seconds()
    time.sleep(seconds)
    busy2, total2 = machine_cpu_seconds()
    return (busy2 - busy) / max(total2 - total, 1e-9)
