"""How long git waits for git-credential-pat, next to git's own helpers.

Run it from the repository with the development environment `tests/run` creates (add the
`bench` extra for the chart: `.venv/bin/pip install -e '.[bench]'`):

    .venv/bin/python bench/run.py               # a stored PAT (the hit path): about 10 s
    .venv/bin/python bench/run.py --mode miss   # minting, 32 parallel gits; fake Azure: 30 s
    .venv/bin/python bench/run.py --mode scale  # 1 vs 1,000 stored credentials: 90 s
    .venv/bin/python bench/run.py --mode all

Every figure is a whole process timed from outside (`time.perf_counter` around start and exit),
start-up included, because that is what git waits for; peak memory is the kernel's own account
of the finished process (`os.wait4`). The commands compared run in turn, round after round, so a
machine that slows down during the run slows them alike, and each ratio is the median of the
ratios within a round. Nothing here touches the keyring or git config of the person running it:
git gets a throwaway HOME, and the Secret Service is a private gnome-keyring on a private bus.
`--use-running-keyring` times the hit path on the session's own Secret Service instead; it
writes one item, for the organization `git-credential-pat-bench`, and removes it at the end.
The other modes always use private keyrings: they sign in and fill the keyring.

The helper timed is this checkout's code through the launcher `install.sh` puts on PATH
(`git_credential_pat/launcher.py`), run by this interpreter; `--helper PATH` times another
command instead, such as an installed one. "helper pat" is git configured by the helper's own
`configure`, as `install.sh` leaves it: git's credential-cache in front of the helper. The
"--no-cache" cases are the helper answering every request itself (`configure --no-cache`).
Results go to `bench/results/latest.json` (one section per mode, so runs of different modes add
up) and `latest.png`, and are printed as a Markdown table.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO)]

from git_credential_pat import launcher  # noqa: E402 - needs REPO on the path
from git_credential_pat.core import entries  # noqa: E402
from git_credential_pat.core.constants import SERVICE  # noqa: E402
from git_credential_pat.core.redact import redact  # noqa: E402
from git_credential_pat.core.remote import Org  # noqa: E402
from tests.privatekeyring import PrivateKeyring  # noqa: E402

RESULTS = REPO / "bench" / "results"
ORG = "git-credential-pat-bench"
URL = f"https://{ORG}@dev.azure.com/{ORG}/proj/_git/repo"  # as Azure DevOps' Clone button has it
FILL = f"url={URL}\n\n".encode()
GET = f"protocol=https\nhost=dev.azure.com\npath={ORG}/proj/_git/repo\nusername={ORG}\n\n".encode()
FAKE_PAT = "bench-fake-pat-0123456789"  # not a secret: nothing accepts it
APPROVE = f"url={URL}\npassword={FAKE_PAT}\n\n".encode()
PARALLEL = 32
CACHE_TIMEOUT = 900
SCALE_ITEMS = 1000


@dataclass
class Case:
    """One command, timed round after round."""

    label: str
    argv: list[str]
    env: dict[str, str]
    stdin: bytes = b""
    seconds: list[float] = field(default_factory=list)
    peak_mib: float = 0.0

    def summary(self) -> dict[str, float]:
        times = [s * 1000 for s in self.seconds]
        return {"median_ms": statistics.median(times), "min_ms": min(times),
                "max_ms": max(times), "runs": len(times), "peak_mib": self.peak_mib}


def run_once(argv: list[str], env: dict[str, str], stdin: bytes = b"",
             expect: bytes = b"") -> float:
    """Start a command and wait for it; its wall time. With `expect`, its output must contain
    that, or the figure would not be one."""
    with tempfile.TemporaryFile() as given, tempfile.TemporaryFile() as out:
        given.write(stdin)
        given.seek(0)
        started = time.perf_counter()
        subprocess.run(argv, stdin=given, stdout=out, stderr=subprocess.STDOUT, env=env,
                       check=False)
        elapsed = time.perf_counter() - started
        out.seek(0)
        output = out.read()
    if expect and expect not in output:
        raise SystemExit(f"bench: {' '.join(argv)} did not answer as expected:\n"
                         f"{redact(output.decode(errors='replace'))}")
    return elapsed


# A process's peak RSS as the kernel counts it includes what its parent had mapped when it was
# forked, so a command started from this (large) process would read at least this process's
# size. This small interpreter starts it instead, and reports what `wait4` says.
PEAK = """import os, sys
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as out:
    out.write(str(usage.ru_maxrss))
"""


def peak_mib(argv: list[str], env: dict[str, str], stdin: bytes = b"") -> float:
    """The largest resident size among the command's processes that were waited for, in MiB;
    it cannot read below the starter's own (`peak floor` in the results)."""
    with tempfile.NamedTemporaryFile() as result:
        subprocess.run([sys.executable, "-I", "-S", "-c", PEAK, result.name, *argv], input=stdin,
                       env=env, capture_output=True, timeout=120, check=False)
        return int(Path(result.name).read_text() or 0) / 1024  # KiB on Linux


def interleave(cases: list[Case], runs: int, warmup: int = 2, peaks: int = 3) -> None:
    """Run every case once per round, starting each round at a different case; then take
    each one's peak memory."""
    for round_ in range(warmup + runs):
        shift = round_ % len(cases)
        for case in cases[shift:] + cases[:shift]:
            elapsed = run_once(case.argv, case.env, case.stdin)
            if round_ >= warmup:
                case.seconds.append(elapsed)
    for case in cases:
        case.peak_mib = max(peak_mib(case.argv, case.env, case.stdin) for _ in range(peaks))


def paired_ratio(case: Case, base: Case) -> float:
    return statistics.median(a / b for a, b in zip(case.seconds, base.seconds))


class Machine:
    """A throwaway HOME with git configs for each helper set-up, and the helper on PATH."""

    def __init__(self, root: Path, dbus_env: dict[str, str], helper: str) -> None:
        self.root = root
        self.home = root / "home"
        self.bin = root / "bin"
        for made in (self.home, self.bin, root / "run"):
            made.mkdir(mode=0o700, parents=True, exist_ok=True)
        command = self.bin / "git-credential-pat"
        if helper:
            command.symlink_to(Path(helper).resolve())
        else:
            command.write_text(launcher.script(sys.executable, launcher.search_path()))
            command.chmod(0o755)
        self.helper = str(command)
        self.base = {
            "PATH": f"{self.bin}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(self.home), "LANG": "C.UTF-8", "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_TERMINAL_PROMPT": "0", "XDG_RUNTIME_DIR": str(root / "run"),
            "XDG_CONFIG_HOME": str(self.home / ".config"),
            "XDG_CACHE_HOME": str(self.home / ".cache"), **dbus_env,
        }

    def env(self, config: str) -> dict[str, str]:
        return {**self.base, "GIT_CONFIG_GLOBAL": str(self.root / f"{config}.gitconfig")}

    def git(self, config: str, *args: str, stdin: bytes = b"") -> bytes:
        done = subprocess.run(["git", *args], input=stdin, env=self.env(config),
                              capture_output=True, timeout=120, check=False)
        if done.returncode:
            raise SystemExit(f"bench: git {' '.join(args)} failed:\n{done.stderr.decode()}")
        return done.stdout

    def configure_pat(self, config: str, *options: str) -> None:
        """The helper set up by its own `configure`, as install.sh does (git's credential-cache
        in front of it), or with `configure`'s options."""
        (self.root / f"{config}.gitconfig").write_text("")
        done = subprocess.run([self.helper, "configure", *options], env=self.env(config),
                              capture_output=True, timeout=60, check=False)
        if done.returncode:
            raise SystemExit(f"bench: configure failed:\n{done.stderr.decode()}")

    def configure_plain(self, config: str, helper: str) -> None:
        (self.root / f"{config}.gitconfig").write_text("")
        self.git(config, "config", "--global", "credential.helper", helper)
        self.git(config, "config", "--global", "credential.useHttpPath", "true")

    def fill(self, config: str, label: str = "") -> Case:
        return Case(label or config, ["git", "credential", "fill"], self.env(config), FILL)

    def approval(self, config: str, label: str) -> Case:
        """`git credential approve` of the stored PAT, as git runs it after a fetch."""
        return Case(label, ["git", "credential", "approve"], self.env(config), APPROVE)

    def approve(self, config: str, credential: bytes = APPROVE) -> None:
        """What git does after a fetch the credential let through: `store` to every helper,
        which puts it in git's credential-cache."""
        self.git(config, "credential", "approve", stdin=credential)

    def stop_cache(self) -> None:
        """Ask git's credential-cache daemon (one for all the configs here), if one started, to
        leave, taking what it holds with it."""
        subprocess.run(["git", "credential-cache", "exit"], env=self.env("cache"),
                       capture_output=True, timeout=30, check=False)


@contextmanager
def secret_service(root: Path, use_running: bool, name: str = "keyring") -> Iterator[dict]:
    """The bus environment of a private gnome-keyring, or of the running one."""
    if use_running:
        address = os.environ.get("DBUS_SESSION_BUS_ADDRESS")
        if not address:
            raise SystemExit("bench: --use-running-keyring needs DBUS_SESSION_BUS_ADDRESS")
        yield {"DBUS_SESSION_BUS_ADDRESS": address}
        return
    with PrivateKeyring(root / name) as keyring:
        yield keyring.env


@contextmanager
def machine_env(machine: Machine) -> Iterator[None]:
    """This process on the machine's bus and lock directory, for the store calls it makes."""
    names = ("DBUS_SESSION_BUS_ADDRESS", "XDG_RUNTIME_DIR")
    saved = {name: os.environ.get(name) for name in names}
    os.environ.update({name: machine.base[name] for name in names})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def forgetter(machine: Machine, cleanup: ExitStack) -> Callable[[str], None]:
    """`forget(key)`: delete a store item the way the helper does, on the machine's keyring."""
    from git_credential_pat.edges.keyringstore import KeyringStore

    cleanup.enter_context(machine_env(machine))
    return KeyringStore().delete


# -- modes --------------------------------------------------------------------------------------

def hit_mode(args: argparse.Namespace, root: Path) -> dict:
    """A stored, valid PAT: the path of every fetch, with the helper as install.sh sets it up
    (git's credential-cache in front) and without the cache, next to `store` and `cache`."""
    with secret_service(root, args.use_running_keyring) as dbus_env, ExitStack() as cleanup:
        machine = Machine(root, dbus_env, args.helper)
        cleanup.callback(machine.stop_cache)
        machine.configure_pat("pat")
        machine.configure_pat("pat-alone", "--no-cache")
        if args.use_running_keyring:
            cleanup.callback(forgetter(machine, cleanup), Org(ORG).url)
        machine.configure_plain("store", "store")
        machine.configure_plain("cache", f"cache --timeout={CACHE_TIMEOUT}")
        for config in ("pat-alone", "store", "cache"):
            machine.approve(config)
        # git's cache gets what a fetch leaves there: the helper's answer, handed back by git.
        machine.approve("pat", machine.git("pat", "credential", "fill", stdin=FILL))
        expected = f"password={FAKE_PAT}".encode()
        for config in ("pat", "pat-alone", "store", "cache"):
            run_once(["git", "credential", "fill"], machine.env(config), FILL, expect=expected)
        run_once([machine.helper, "get"], machine.env("pat"), GET, expect=expected)
        pat, store = machine.fill("pat", "fill, helper pat"), machine.fill("store", "fill, store")
        alone = machine.fill("pat-alone", "fill, helper pat --no-cache")
        cases = [
            pat, alone, store, machine.fill("cache", "fill, cache"),
            Case("pat get alone", [machine.helper, "get"], machine.env("pat"), GET),
            Case("python -I -S -c pass", [sys.executable, "-I", "-S", "-c", "pass"],
                 machine.base),
            # After every successful fetch git sends `store` to each helper: the other half.
            *(machine.approval(config, f"approve, {label}") for config, label in
              (("pat", "helper pat"), ("pat-alone", "helper pat --no-cache"),
               ("store", "store"))),
        ]
        interleave(cases, args.runs)
        return report(cases, store, {"pat/store (paired)": paired_ratio(pat, store),
                                     "pat --no-cache/store (paired)": paired_ratio(alone, store),
                                     "peak floor MiB": peak_mib(["true"], machine.base)})


def scale_mode(args: argparse.Namespace, root: Path) -> dict:
    """The same hit with one credential stored and with 1,000 (organizations and other hosts),
    each in its own private keyring so that the two run in turn. git's cache is left out, so
    that every fill reaches the keyring."""
    with secret_service(root, False, "one") as one_env, \
            secret_service(root, False, "many") as many_env:
        one = Machine(root / "one", one_env, args.helper)
        many = Machine(root / "many", many_env, args.helper)
        for machine in (one, many):
            machine.configure_pat("pat", "--no-cache")
            machine.approve("pat")
        started = time.monotonic()
        with machine_env(many):
            fill_keyring(SCALE_ITEMS - 1)
        print(f"stored {SCALE_ITEMS - 1} more credentials in {time.monotonic() - started:.0f} s",
              file=sys.stderr)
        expected = f"password={FAKE_PAT}".encode()
        for machine in (one, many):
            run_once(["git", "credential", "fill"], machine.env("pat"), FILL, expect=expected)
        cases = [one.fill("pat", "fill, 1 stored"),
                 many.fill("pat", f"fill, {SCALE_ITEMS:,} stored")]
        interleave(cases, args.runs)
        return report(cases, cases[0], {"1,000/1 (paired)": paired_ratio(cases[1], cases[0])})


def fill_keyring(count: int) -> None:
    """Store `count` items the way the helper stores them: Azure DevOps organizations and, one
    in four, other HTTPS hosts, through `keyring` (the index `status` reads is left out: `get`
    never reads it)."""
    from keyring.backends import SecretService

    backend = SecretService.Keyring()
    expiry = int(time.time()) + 30 * 86400

    def store(n: int) -> None:
        item = entries.load(None)
        entries.put(item, {"username": f"user{n}@example.com", "password": f"fake-pat-{n}",
                           "password_expiry_utc": expiry})
        key = (entries.item_key("https", f"git{n}.example.com") if n % 4 == 0
               else Org(f"org-{n}").url)
        backend.set_password(SERVICE, key, entries.dump(item))

    for n in range(count):  # one at a time: gnome-keyring 42 crashes under parallel writes
        store(n)


def miss_mode(args: argparse.Namespace, root: Path) -> dict:
    """Minting against the local fake Azure: one `get` that signs in from the token cache and
    creates a PAT; 32 parallel hits next to 32 parallel `store` fills; 32 parallel cold misses."""
    from tests.fakeazure import FakeAzure

    with secret_service(root, False) as dbus_env, FakeAzure(root / "fake") as fake, \
            ExitStack() as cleanup:
        tenant = fake.add_tenant()
        fake.add_user("alice@contoso.com", tenant)
        fake.add_org(ORG, tenant)
        fake.add_repo(ORG, "proj", "repo")
        machine = Machine(root, dbus_env, args.helper)
        browser = {**fake.browser_env(), "HTTPS_PROXY": fake.proxy_url,
                   "SSL_CERT_FILE": str(fake.ca_path)}
        machine.base.update(browser)
        cleanup.callback(machine.stop_cache)
        machine.configure_pat("pat")
        machine.configure_pat("pat-alone", "--no-cache")
        for config in ("pat", "pat-alone"):
            for name, value in (("http.proxy", fake.proxy_url),
                                ("http.sslCAInfo", str(fake.ca_path))):
                machine.git(config, "config", "--global", name, value)
        keyring_forget = forgetter(machine, cleanup)

        def forget() -> None:
            keyring_forget(Org(ORG).url)
            machine.stop_cache()

        # Signs in through the browser; the approval puts the PAT in git's cache, as a fetch does.
        machine.approve("pat", machine.git("pat", "credential", "fill", stdin=FILL))
        machine.configure_plain("store", "store")
        machine.approve("store")

        hits = machine.fill("pat", f"{PARALLEL} parallel fills, helper pat")
        alone = machine.fill("pat-alone", f"{PARALLEL} parallel fills, helper pat --no-cache")
        stores = machine.fill("store", f"{PARALLEL} parallel fills, store")
        for round_ in range(args.parallel_runs + 1):
            for case in (hits, alone, stores):
                elapsed = run_parallel(case)
                if round_:
                    case.seconds.append(elapsed)

        minting = Case("get that mints", [machine.helper, "get"], machine.env("pat"), GET)
        for _ in range(args.miss_runs):
            forget()
            before = fake.minted_count()
            minting.seconds.append(run_once(minting.argv, minting.env, GET, b"password="))
            if fake.minted_count() != before + 1:
                raise SystemExit("bench: a miss did not mint exactly one PAT")
        forget()
        minting.peak_mib = peak_mib(minting.argv, minting.env, GET)

        cold = machine.fill("pat", f"{PARALLEL} parallel cold misses")
        minted = []
        for _ in range(args.parallel_runs):
            forget()
            before = fake.minted_count()
            cold.seconds.append(run_parallel(cold))
            minted.append(fake.minted_count() - before)
        return report([minting, hits, alone, stores, cold], None, {
            "parallel hits/store (paired)": paired_ratio(hits, stores),
            "parallel hits --no-cache/store (paired)": paired_ratio(alone, stores),
            "PATs minted per 32 cold misses": max(minted),
        })


def run_parallel(case: Case) -> float:
    """Start `PARALLEL` copies at once; the wall time until the last has answered."""
    from concurrent.futures import ThreadPoolExecutor

    started = time.perf_counter()
    with ThreadPoolExecutor(PARALLEL) as pool:
        list(pool.map(lambda _: run_once(case.argv, case.env, case.stdin, b"password="),
                      range(PARALLEL)))
    return time.perf_counter() - started


# -- results ------------------------------------------------------------------------------------

def report(cases: list[Case], base: Case | None, ratios: dict[str, float]) -> dict:
    """Each case's figures, with the ratio of its median to the base case's."""
    rows = {case.label: case.summary() for case in cases}
    if base:
        for row in rows.values():
            row["ratio"] = row["median_ms"] / rows[base.label]["median_ms"]
    return {"base": base.label if base else "", "cases": rows, "ratios": ratios}


def machine_info() -> dict[str, str]:
    def first_line(*argv: str) -> str:
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=10,
                                  check=False).stdout.strip().splitlines()[0]
        except (OSError, IndexError):
            return "unknown"

    cpu = "unknown"
    with open("/proc/cpuinfo", encoding="utf-8") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "cpu": f"{cpu}, {os.cpu_count()} cores", "os": platform.platform(),
            "python": f"{platform.python_version()} ({sys.executable})",
            "git": first_line("git", "--version"),
            "gnome-keyring": first_line("gnome-keyring-daemon", "--version")}


def markdown(mode: str, section: dict) -> str:
    base = section["base"]
    ratio = f"to {base}" if base else "ratio"
    lines = [f"| {mode} | median ms | min | max | {ratio} | peak RSS MiB |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for label, row in section["cases"].items():
        ratio = f"{row['ratio']:.2f}" if "ratio" in row else "—"
        peak = f"{row['peak_mib']:.1f}" if row["peak_mib"] else "—"
        lines.append(f"| {label} | {row['median_ms']:.1f} | {row['min_ms']:.1f} | "
                     f"{row['max_ms']:.1f} | {ratio} | {peak} |")
    lines += [f"\n{name}: {value:.2f}" for name, value in section["ratios"].items()]
    return "\n".join(lines)


def chart(results: dict, path: Path) -> bool:
    """Medians with min-max whiskers, one panel per mode; False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    modes = [m for m in ("hit", "scale", "miss") if m in results["modes"]]
    bars = [len(results["modes"][mode]["cases"]) for mode in modes]
    figure, axes = plt.subplots(len(modes), 1, figsize=(7, 0.28 * sum(bars) + 0.75 * len(modes)),
                                squeeze=False, gridspec_kw={"height_ratios": bars})
    for ax, mode in zip(axes[:, 0], modes):
        rows = results["modes"][mode]["cases"]
        labels = list(rows)
        medians = [rows[k]["median_ms"] for k in labels]
        spread = [[m - rows[k]["min_ms"] for k, m in zip(labels, medians)],
                  [rows[k]["max_ms"] - m for k, m in zip(labels, medians)]]
        ax.barh(labels, medians, xerr=spread, color="#4878a8", ecolor="#888")
        ax.invert_yaxis()
        ax.set_xscale("log" if max(medians) / min(medians) > 50 else "linear")
        machine = results["modes"][mode]["machine"]
        ax.set_title(f"{mode}: median ms, whiskers min-max ({machine['date']}, "
                     f"{machine['cpu']})", fontsize=8)
        ax.tick_params(labelsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=("hit", "miss", "scale", "all"), default="hit")
    parser.add_argument("--runs", type=int, default=40, help="timed rounds (hit and scale)")
    parser.add_argument("--miss-runs", type=int, default=10, help="timed mints (miss)")
    parser.add_argument("--parallel-runs", type=int, default=5,
                        help="rounds of 32 parallel processes (miss)")
    parser.add_argument("--helper", default="",
                        help="time this command instead of the checkout through the launcher")
    parser.add_argument("--use-running-keyring", action="store_true",
                        help="hit mode: use the session's Secret Service, not a private "
                             "gnome-keyring")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    for tool in ("git", "dbus-daemon", "gnome-keyring-daemon"):
        if not shutil.which(tool):
            raise SystemExit(f"bench: {tool} is missing (tests/run installs what is needed)")

    modes = {"hit": hit_mode, "scale": scale_mode, "miss": miss_mode}
    chosen = list(modes) if args.mode == "all" else [args.mode]
    args.out.mkdir(parents=True, exist_ok=True)
    latest = args.out / "latest.json"
    results = json.loads(latest.read_text()) if latest.exists() else {"modes": {}}
    machine = machine_info()
    for mode in chosen:
        with tempfile.TemporaryDirectory(prefix="git-credential-pat-bench-") as root:
            results["modes"][mode] = {**modes[mode](args, Path(root)), "machine": machine}
        print(markdown(mode, results["modes"][mode]) + "\n")
    latest.write_text(json.dumps(results, indent=1) + "\n")
    drawn = chart(results, args.out / "latest.png")
    print(f"{machine['date']}; {machine['cpu']}; {machine['os']}; Python {machine['python']}; "
          f"{machine['git']}; {machine['gnome-keyring']}")
    print(f"wrote {latest}" + (" and latest.png" if drawn else " (no chart: matplotlib missing)"))


if __name__ == "__main__":
    main()
