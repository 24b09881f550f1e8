"""Soak: memory, CPU and backlog of the running service under a steady push, over time.

Run: ``make bench`` (a 1-minute run) or ``.venv/bin/python -m tests.bench.bench_soak
[--minutes M] [--rate R] [--distributed] [--csv PATH]`` (issue 18's goal: RSS growth
< 5 % after warm-up over a 60-minute soak at 500 mentions/s).

Embedded (default): ``sentimon run --no-demo`` in a subprocess, as a user starts it, on
a free port with a temporary data directory holding five brands and an ingest key.
``--distributed``: Kafka, PostgreSQL, ``sentimon ingest``, two ``sentimon scorer`` and
``sentimon api``, started by the same harness as ``bench_distributed``.

The load: TweetEval's test tweets, each naming one of five brands (``bench_pipeline``'s
texts), pushed to ``POST /api/v1/mentions`` at a fixed offered ``--rate`` in batches, each
batch leaving at its scheduled time whatever the answers to earlier ones did. Every
``--sample-s`` seconds: each service process's RSS and CPU (its worker processes
included, each on its own, read from ``/proc``), the mentions the ingest accepted, and
the mentions stored (``sentimon_mentions_stored_total`` from ``/metrics``); the backlog
is accepted minus stored. The verdict (``soak_verdict``) compares each process's RSS
just after the warm-up with its RSS at the end.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson

from tests.bench.bench_pipeline import BRANDS, build_texts
from tests.fixtures.live_server import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 240.0
STOP_TIMEOUT_S = 60.0
SENDER_THREADS = 4
# A batch every 200 ms: 100 mentions a request at 500/s, close to what a connector pushes.
BATCH_INTERVAL_S = 0.2
GOAL_GROWTH_PCT = 5.0
STORED_METRIC = "sentimon_mentions_stored_total"
CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
PAGE_KB = 1024


# --- the verdict: pure, unit-tested in tests/bench/test_bench_soak.py -------------------


@dataclass(frozen=True)
class Sample:
    """One observation, ``t_s`` seconds after the load started."""

    t_s: float
    accepted: int
    stored: int
    rss_bytes: Mapping[str, int]
    cpu_pct: Mapping[str, float] = field(default_factory=dict)

    @property
    def backlog(self) -> int:
        """Mentions the ingest accepted that are not stored yet."""
        return self.accepted - self.stored


@dataclass(frozen=True)
class ProcessGrowth:
    """RSS of one process (or ``total``) just after the warm-up and at the end."""

    after_warmup_bytes: float
    end_bytes: float
    peak_bytes: int

    @property
    def growth_pct(self) -> float:
        return (self.end_bytes / self.after_warmup_bytes - 1.0) * 100.0


@dataclass(frozen=True)
class SoakVerdict:
    warmup_s: float
    duration_s: float
    growth: Mapping[str, ProcessGrowth]
    max_backlog: int
    end_backlog: int
    max_growth_pct: float

    @property
    def flat(self) -> bool:
        """True when no process (and not their total) grew by ``max_growth_pct`` or more."""
        return all(g.growth_pct < self.max_growth_pct for g in self.growth.values())


def _median_rss(samples: Sequence[Sample], name: str) -> float:
    return statistics.median(s.rss_bytes[name] for s in samples)


def soak_verdict(
    samples: Sequence[Sample],
    *,
    warmup_fraction: float = 0.2,
    window_fraction: float = 0.1,
    max_growth_pct: float = GOAL_GROWTH_PCT,
) -> SoakVerdict:
    """RSS growth after the warm-up, per process and in total, and the backlog.

    The first ``warmup_fraction`` of the run is warm-up (imports, caches, the first
    batches, SQLite's page cache) and is not judged. "After warm-up" is the median RSS of
    the samples in the next ``window_fraction`` of the run, "end" the median of the last
    ``window_fraction``: medians, so that one sample caught mid-batch (a garbage
    collection, a buffer not yet returned) moves neither. A process must appear in every
    judged sample to be judged (a worker that restarted is a new process). Raises
    ``ValueError`` with fewer than two samples.
    """
    if len(samples) < 2:
        raise ValueError("a verdict needs at least two samples")
    ordered = sorted(samples, key=lambda s: s.t_s)
    start, end = ordered[0].t_s, ordered[-1].t_s
    duration = end - start
    warmup_end = start + warmup_fraction * duration
    window = window_fraction * duration
    judged = [s for s in ordered if s.t_s >= warmup_end] or ordered[-1:]
    first = [s for s in judged if s.t_s <= warmup_end + window] or judged[:1]
    last = [s for s in judged if s.t_s >= end - window] or judged[-1:]
    names = set(judged[0].rss_bytes)
    for s in judged[1:]:
        names &= set(s.rss_bytes)
    growth: dict[str, ProcessGrowth] = {}
    for name in sorted(names):
        growth[name] = ProcessGrowth(
            after_warmup_bytes=_median_rss(first, name),
            end_bytes=_median_rss(last, name),
            peak_bytes=max(s.rss_bytes[name] for s in judged),
        )
    if len(names) > 1:

        def total(group: Sequence[Sample]) -> float:
            return statistics.median(sum(s.rss_bytes[n] for n in names) for s in group)

        growth["total"] = ProcessGrowth(
            after_warmup_bytes=total(first),
            end_bytes=total(last),
            peak_bytes=max(sum(s.rss_bytes[n] for n in names) for s in judged),
        )
    return SoakVerdict(
        warmup_s=warmup_end - start,
        duration_s=duration,
        growth=growth,
        max_backlog=max(s.backlog for s in ordered),
        end_backlog=ordered[-1].backlog,
        max_growth_pct=max_growth_pct,
    )


# --- reading processes from /proc ---------------------------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    """``/proc/<pid>/stat`` after the command name (which may hold spaces), or None."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw.rpartition(")")[2].split()


def descendants(root: int) -> list[int]:
    """Every live process below ``root`` (worker processes, a forkserver's children)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    out: list[int] = []
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return sorted(out)


def rss_bytes(pid: int) -> int | None:
    """Resident set size (``VmRSS``), or None once the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * PAGE_KB
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time the process has used, or None once it is gone."""
    fields = _stat_fields(pid)
    if fields is None:
        return None
    # After the name: state is fields[0], so utime (stat field 14) is fields[11].
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def command_line(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


class ProcessSampler:
    """RSS and CPU share of named service processes and each of their descendants.

    A descendant is named ``<service>+<pid>``; its command line is kept in ``legend``.
    """

    def __init__(self, roots: Mapping[str, int]) -> None:
        self._roots = dict(roots)
        self._last: dict[str, tuple[float, float]] = {}
        self.legend: dict[str, str] = {}

    def _named(self) -> dict[str, int]:
        named: dict[str, int] = {}
        for name, pid in self._roots.items():
            named[name] = pid
            for child in descendants(pid):
                label = f"{name}+{child}"
                named[label] = child
                if label not in self.legend:
                    self.legend[label] = command_line(child)[:120]
        return named

    def sample(self) -> tuple[dict[str, int], dict[str, float]]:
        rss: dict[str, int] = {}
        cpu: dict[str, float] = {}
        now = time.monotonic()
        for name, pid in self._named().items():
            r, c = rss_bytes(pid), cpu_seconds(pid)
            if r is None or c is None:
                continue
            rss[name] = r
            if name in self._last:
                t0, c0 = self._last[name]
                cpu[name] = (c - c0) / max(now - t0, 1e-9) * 100.0
            self._last[name] = (now, c)
        return rss, cpu


# --- the services under test ----------------------------------------------------------------


@dataclass
class Target:
    """A started service: where to push, with which key, which processes to watch and
    which ``/metrics`` endpoints count stored mentions (summed)."""

    push_url: str
    ingest_key: str
    processes: dict[str, int]
    metrics_urls: list[str]
    logs: Callable[[], str]


def _free_port() -> int:
    from tests.fixtures.postgres import free_port

    return free_port()


def _prepare_data_dir(data_dir: Path) -> str:
    """Brands and an ingest key written to the instance's database before it starts."""
    from services.core.auth import Role
    from services.core.clock import SystemClock
    from services.core.storage.brands import BrandStore
    from services.core.storage.db import make_engine, migrate, sqlite_url
    from services.core.storage.keys import KeyStore

    data_dir.mkdir(parents=True)
    engine = make_engine(sqlite_url(data_dir))
    try:
        migrate(engine)
        clock = SystemClock()
        brands = BrandStore(engine, clock)
        for name, query in BRANDS:
            brands.create(name, query, ())
        return KeyStore(engine, clock).create(Role.INGEST, "soak ingest")[0]
    finally:
        engine.dispose()


def _ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> bool:
    if proc.poll() is not None:
        raise RuntimeError(f"exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


@contextmanager
def embedded_target(root: Path, scorer_mode: str) -> Iterator[Target]:
    """``sentimon run --no-demo`` on a free port; stopped with SIGINT (Ctrl-C)."""
    data_dir = root / "data"
    key = _prepare_data_dir(data_dir)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = root / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENTIMON_")}
    env.update(SENTIMON_LOG_LEVEL="WARNING", SENTIMON_SCORER_MODE=scorer_mode)
    command = [sys.executable, "-m", "services.cli", "run", "--no-demo", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--data-dir", str(data_dir)]
    with log.open("ab") as out:
        proc = subprocess.Popen(  # noqa: S603 (a fixed command line)
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=REPO_ROOT,
        )
    try:
        wait_until(lambda: _ready(url, proc, log), timeout_s=STARTUP_TIMEOUT_S, what="sentimon run")
        yield Target(
            push_url=f"{url}/api/v1/mentions",
            ingest_key=key,
            processes={"run": proc.pid},
            metrics_urls=[f"{url}/metrics"],
            logs=lambda: log.read_text(errors="replace")[-3000:],
        )
    finally:
        if proc.poll() is None:
            proc.send_signal(2)  # SIGINT: the graceful stop a user's Ctrl-C gives
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=STOP_TIMEOUT_S)


@contextmanager
def distributed_target(root: Path, scorer_mode: str) -> Iterator[Target]:
    """Kafka, PostgreSQL, ``sentimon ingest``, two scorers and ``sentimon api``, from
    ``bench_distributed``'s harness (``tests.fixtures.distributed``)."""
    from tests.fixtures.distributed import close_stack, open_stack
    from tests.fixtures.kafka import KafkaBroker
    from tests.fixtures.postgres import PostgresServer

    kafka = KafkaBroker(root / "kafka", _free_port(), _free_port())
    pg_dir = Path(tempfile.mkdtemp(prefix="sentimon-soak-pg-"))
    postgres = PostgresServer(pg_dir, _free_port())
    try:
        kafka.start()
        postgres.start()
        stack = open_stack(
            root,
            kafka,
            postgres,
            brands=BRANDS,
            SENTIMON_LOG_LEVEL="WARNING",
            SENTIMON_SCORER_MODE=scorer_mode,
        )
        try:
            ingest = stack.service("ingest", "ingest")
            scorers = [stack.service("scorer", f"scorer-{n}") for n in (1, 2)]
            api = stack.service("api", "api")
            services = (ingest, *scorers, api)
            for p in services:
                p.start()
            for p in services:
                p.wait_ready()
            processes = {p.name: p.proc.pid for p in services if p.proc is not None}
            yield Target(
                push_url=f"http://127.0.0.1:{ingest.port}/api/v1/mentions",
                ingest_key=stack.ingest_key,
                processes=processes,
                metrics_urls=[f"http://127.0.0.1:{s.port}/metrics" for s in scorers],
                logs=stack.logs,
            )
        finally:
            close_stack(stack)
    finally:
        try:
            kafka.stop()
        finally:
            postgres.stop(immediate=True)
            shutil.rmtree(pg_dir, ignore_errors=True)


def stored_total(client: httpx.Client, urls: Sequence[str]) -> int:
    """``sentimon_mentions_stored_total`` summed over the given ``/metrics`` endpoints."""
    total = 0.0
    for url in urls:
        for line in client.get(url).text.splitlines():
            if line.startswith(STORED_METRIC + " "):
                total += float(line.split()[1])
    return int(total)


# --- the load ---------------------------------------------------------------------------


class Pusher:
    """Offers ``rate`` mentions/s for ``seconds`` from ``SENDER_THREADS`` threads: batch
    ``k`` is sent at ``start + k × BATCH_INTERVAL_S`` (late, never skipped, when the
    service answers slowly), so the offered rate does not bend to the service."""

    def __init__(self, target: Target, texts: Sequence[str], rate: float, seconds: float) -> None:
        self._target = target
        self._texts = texts
        self._batch = max(1, round(rate * BATCH_INTERVAL_S))
        self._batches = int(seconds / BATCH_INTERVAL_S)
        self._run = uuid.uuid4().hex[:8]
        self._lock = threading.Lock()
        self.accepted = 0
        self.refused: dict[str, int] = {}
        self.max_late_s = 0.0
        self.start = 0.0
        self._threads: list[threading.Thread] = []

    def _docs(self, k: int) -> bytes:
        now = datetime.now(UTC)
        docs = []
        for j in range(self._batch):
            n = k * self._batch + j
            docs.append(
                {
                    "id": f"soak-{self._run}-{n}",
                    "source": "x",
                    "text": self._texts[n % len(self._texts)],
                    "created_at": (now - timedelta(seconds=j)).isoformat(),
                    "author": {"id": f"a{n % 500}", "handle": f"user{n % 500}"},
                    "metrics": {"likes": n % 7, "reposts": n % 3, "replies": n % 2},
                }
            )
        return orjson.dumps(docs)

    def _send(self, lane: int) -> None:
        headers = {
            "Authorization": f"Bearer {self._target.ingest_key}",
            "Content-Type": "application/json",
        }
        with httpx.Client(timeout=60) as client:
            for k in range(lane, self._batches, SENDER_THREADS):
                due = self.start + k * BATCH_INTERVAL_S
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)  # ok-sleep: paces the offered load; waits for no result
                body = self._docs(k)
                try:
                    r = client.post(self._target.push_url, content=body, headers=headers)
                    outcome = str(r.status_code)
                    accepted = int(r.json()["accepted"]) if r.status_code == 202 else 0
                except httpx.TransportError as e:
                    outcome, accepted = type(e).__name__, 0
                with self._lock:
                    self.max_late_s = max(self.max_late_s, time.monotonic() - due)
                    self.accepted += accepted
                    if outcome != "202":
                        self.refused[outcome] = self.refused.get(outcome, 0) + self._batch

    def begin(self) -> None:
        self.start = time.monotonic()
        self._threads = [
            threading.Thread(target=self._send, args=(lane,), daemon=True)
            for lane in range(SENDER_THREADS)
        ]
        for t in self._threads:
            t.start()

    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def join(self) -> None:
        for t in self._threads:
            t.join()


# --- the run ----------------------------------------------------------------------------


def _mb(n: float) -> str:
    return f"{n / 2**20:,.0f}"


def print_row(sample: Sample, names: Sequence[str], rate: float) -> None:
    cells = " ".join(
        f"{_mb(sample.rss_bytes.get(n, 0)):>7} {sample.cpu_pct.get(n, 0.0):>4.0f}%" for n in names
    )
    print(
        f"{sample.t_s:7.0f} {sample.accepted:>10,} {sample.stored:>10,} "
        f"{sample.backlog:>8,} {sample.backlog / rate:>6.1f}s  {cells}",
        flush=True,
    )


def soak(
    target: Target, *, rate: float, seconds: float, sample_s: float, drain_s: float
) -> tuple[list[Sample], Sample, float | None, Pusher, ProcessSampler]:
    """Push for ``seconds``, sampling every ``sample_s``; then wait up to ``drain_s`` for
    the backlog to clear. Returns the load's samples, one sample after the drain (or
    after ``drain_s``), the drain time (None if it did not drain), the pusher and the
    sampler (for its legend)."""
    texts = build_texts(12_284)
    sampler = ProcessSampler(target.processes)
    pusher = Pusher(target, texts, rate, seconds)
    samples: list[Sample] = []
    names: list[str] = []
    # A fresh connection for every sample: a server closes an idle keep-alive connection
    # after 5 s (uvicorn's default), the very sampling period, and a reused one that it
    # closed at that moment read as "connection reset" and ended a soak.
    no_keepalive = httpx.Limits(max_keepalive_connections=0)
    with httpx.Client(timeout=30, limits=no_keepalive) as client:
        sampler.sample()  # the CPU baseline for the first row
        pusher.begin()
        next_at = pusher.start
        while pusher.running():
            next_at += sample_s
            time.sleep(max(0.0, next_at - time.monotonic()))  # ok-sleep: the sampling period
            rss, cpu = sampler.sample()
            s = Sample(
                t_s=time.monotonic() - pusher.start,
                accepted=pusher.accepted,
                stored=stored_total(client, target.metrics_urls),
                rss_bytes=rss,
                cpu_pct=cpu,
            )
            if not names:
                names = list(rss)
                head = " ".join(f"{n[:12]:>13}" for n in names)
                print(
                    f"\n{'t (s)':>7} {'accepted':>10} {'stored':>10} {'backlog':>8} "
                    f"{'(of input)':>7}  {head}   (RSS MiB, CPU %)"
                )
            samples.append(s)
            print_row(s, names, rate)
        pusher.join()
        drained_in: float | None = None
        t0 = time.monotonic()
        try:
            wait_until(
                lambda: stored_total(client, target.metrics_urls) >= pusher.accepted,
                timeout_s=drain_s,
                what="the backlog drained",
                interval_s=0.5,
            )
            drained_in = time.monotonic() - t0
        except TimeoutError:
            pass
        rss, cpu = sampler.sample()
        final = Sample(
            t_s=time.monotonic() - pusher.start,
            accepted=pusher.accepted,
            stored=stored_total(client, target.metrics_urls),
            rss_bytes=rss,
            cpu_pct=cpu,
        )
    return samples, final, drained_in, pusher, sampler


def write_csv(path: Path, samples: Sequence[Sample], phase_of: Callable[[Sample], str]) -> None:
    names = sorted({n for s in samples for n in s.rss_bytes})
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            ["t_s", "phase", "accepted", "stored", "backlog"]
            + [f"rss_bytes:{n}" for n in names]
            + [f"cpu_pct:{n}" for n in names]
        )
        for s in samples:
            w.writerow(
                [f"{s.t_s:.1f}", phase_of(s), s.accepted, s.stored, s.backlog]
                + [s.rss_bytes.get(n, "") for n in names]
                + [f"{s.cpu_pct[n]:.1f}" if n in s.cpu_pct else "" for n in names]
            )


def report(
    verdict: SoakVerdict,
    samples: Sequence[Sample],
    final: Sample,
    drained_in: float | None,
    pusher: Pusher,
    rate: float,
    seconds: float,
) -> None:
    achieved = samples[-1].accepted / samples[-1].t_s if samples else 0.0
    print(
        f"\noffered {rate:g} mentions/s for {seconds:g} s; accepted {pusher.accepted:,} "
        f"({achieved:,.0f}/s); refused {sum(pusher.refused.values()):,} {pusher.refused or ''}; "
        f"latest batch left {pusher.max_late_s:.2f} s after its time"
    )
    load = os.getloadavg()
    print(
        f"machine: {os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    print(f"\nRSS, judged after a {verdict.warmup_s:.0f} s warm-up (of {verdict.duration_s:.0f} s)")
    print("| process | after warm-up (MiB) | end (MiB) | peak (MiB) | growth | mean CPU |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, g in verdict.growth.items():
        cpus = [s.cpu_pct[name] for s in samples if name in s.cpu_pct]
        cpu = f"{statistics.fmean(cpus):.0f} %" if cpus else ""
        print(
            f"| {name} | {_mb(g.after_warmup_bytes)} | {_mb(g.end_bytes)} | "
            f"{_mb(g.peak_bytes)} | {g.growth_pct:+.1f} % | {cpu} |"
        )
    print(
        f"\nbacklog (accepted − stored): max {verdict.max_backlog:,} "
        f"({verdict.max_backlog / rate:.1f} s of input), at the end of the load "
        f"{verdict.end_backlog:,} ({verdict.end_backlog / rate:.1f} s); "
        + (
            f"drained {drained_in:.1f} s after the load stopped"
            if drained_in is not None
            else f"NOT drained: {final.backlog:,} left"
        )
    )
    after = ", ".join(f"{n} {_mb(b)} MiB" for n, b in final.rss_bytes.items())
    print(f"RSS {'once drained' if drained_in is not None else 'after the drain wait'}: {after}")
    word = "FLAT" if verdict.flat else "GROWING"
    print(
        f"\nverdict: {word} (goal: every process < {verdict.max_growth_pct:g} % after warm-up; "
        f"largest {max(g.growth_pct for g in verdict.growth.values()):+.1f} %)"
    )


def _server_words(target: Target) -> str:
    """The tail of the service's log, without its admin key line."""
    return "\n".join(ln for ln in target.logs().splitlines() if "key" not in ln)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=2.0, help="load duration")
    parser.add_argument("--rate", type=float, default=500.0, help="offered mentions/s")
    parser.add_argument("--distributed", action="store_true", help="Kafka, PostgreSQL, processes")
    parser.add_argument(
        "--scorer-mode",
        choices=("hybrid", "lexicon"),
        default="hybrid",
        help="SENTIMON_SCORER_MODE of the service [default: hybrid, the service's default]",
    )
    parser.add_argument("--sample-s", type=float, default=5.0, help="sampling period")
    parser.add_argument("--warmup", type=float, default=0.2, help="fraction of the run not judged")
    parser.add_argument("--drain-s", type=float, default=180.0, help="longest wait for the backlog")
    parser.add_argument("--csv", type=Path, default=None, help="write the series here")
    args = parser.parse_args()
    seconds = args.minutes * 60
    mode = "distributed" if args.distributed else "embedded"
    print(
        f"soak: {mode}, scorer {args.scorer_mode}, {args.rate:g} mentions/s offered for "
        f"{seconds:g} s, sampled every {args.sample_s:g} s"
    )
    root = Path(tempfile.mkdtemp(prefix="sentimon-soak-"))
    start: Callable[[Path, str], AbstractContextManager[Target]] = (
        distributed_target if args.distributed else embedded_target
    )
    try:
        with start(root, args.scorer_mode) as target:
            try:
                samples, final, drained_in, pusher, sampler = soak(
                    target,
                    rate=args.rate,
                    seconds=seconds,
                    sample_s=args.sample_s,
                    drain_s=args.drain_s,
                )
            except Exception:
                # The service went away mid-run: its own last words, before they are deleted.
                print(_server_words(target), file=sys.stderr)
                raise
            if drained_in is None:
                print(_server_words(target))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if sampler.legend:
        print("\nworker processes:")
        for label, cmd in sampler.legend.items():
            print(f"  {label}: {cmd}")
    verdict = soak_verdict(samples, warmup_fraction=args.warmup)
    report(verdict, samples, final, drained_in, pusher, args.rate, seconds)
    if args.csv is not None:
        last_t = samples[-1].t_s
        write_csv(args.csv, [*samples, final], lambda s: "load" if s.t_s <= last_t else "drained")
        print(f"series written to {args.csv}")


if __name__ == "__main__":
    main()
