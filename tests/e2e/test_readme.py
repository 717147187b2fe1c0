"""The README walk-through, run verbatim against a real `communities serve`, outputs compared with the README's."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import pytest

from communities.cli import CLI_WORKER_IDS
from tests.e2e.helpers import (
    ROOT,
    SNOWFLAKE_RE,
    TOKEN_RE,
    check_snowflake,
    clean_env,
    grpcurl,
    run,
    worker_of,
)

pytestmark = pytest.mark.e2e

README = ROOT / "README.md"
BEGIN, END = "<!-- walkthrough:begin -->", "<!-- walkthrough:end -->"
README_ADDRESS = "127.0.0.1:50051"
FENCE = re.compile(r"^```([\w-]*)[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
MARKER = re.compile(r"@@(BLOCK \d+|END)@@\n")
SHELL_LANGS = {"sh", "bash", "shell", "console"}


@dataclass
class Step:
    command: str
    expected_lang: str | None = None
    expected: str | None = None


def walkthrough_steps(readme: str) -> list[Step]:
    """The ```sh blocks of the walk-through, each with the expected-output block that follows it (if any)."""
    assert readme.count(BEGIN) == 1 and readme.count(END) == 1, "README must have one walkthrough:begin/end pair"
    section = readme.split(BEGIN, 1)[1].split(END, 1)[0]
    steps: list[Step] = []
    for match in FENCE.finditer(section):
        lang, body = match.group(1), match.group(2)
        if lang in SHELL_LANGS:
            steps.append(Step(command=body))
        else:
            assert steps, f"README walk-through: an output block comes before any command:\n{body}"
            assert steps[-1].expected is None, (
                f"README walk-through: two output blocks follow one command:\n{steps[-1].command}"
            )
            steps[-1].expected_lang, steps[-1].expected = lang, body
    return steps


def build_script(steps: list[Step], address: str) -> str:
    """All blocks in one bash script, the only change being the address; markers between blocks on stdout and
    stderr; at the end the exported environment as JSON (to learn $TOKEN etc.)."""
    lines = []
    for index, step in enumerate(steps):
        lines.append(f'echo "@@BLOCK {index}@@"; echo "@@BLOCK {index}@@" >&2')
        lines.append(step.command.replace(README_ADDRESS, address).rstrip("\n"))
    lines.append('echo "@@END@@"; echo "@@END@@" >&2')
    lines.append("python3 -c 'import json, os; print(json.dumps(dict(os.environ)))'")
    return "\n".join(lines) + "\n"


def split_output(text: str) -> tuple[dict[str, str], str]:
    """{"BLOCK n" | "END": output after that marker}, and what came before the first marker."""
    parts = MARKER.split(text)
    return dict(zip(parts[1::2], parts[2::2], strict=True)), parts[0]


INVITE_CODE_RE = re.compile(r"[23456789abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ]{8,32}")
TIMESTAMP_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")
BASE64_RE = re.compile(r"[A-Za-z0-9+/]+={0,2}")


@dataclass
class Comparison:
    since_ms: int
    errors: list[str] = field(default_factory=list)
    ids: dict[str, str] = field(default_factory=dict)  # README id -> actual id
    actual_ids: dict[str, str] = field(default_factory=dict)  # actual id -> README id
    tokens: set[str] = field(default_factory=set)

    def same_thing(self, readme_id: str, actual_id: str, where: str) -> None:
        """The README uses one id per thing: the server must too (same README id -> same actual id, and back)."""
        known = self.ids.setdefault(readme_id, actual_id)
        if known != actual_id:
            self.errors.append(f"{where}: README id {readme_id} stands for {known} earlier, but here is {actual_id}")
        back = self.actual_ids.setdefault(actual_id, readme_id)
        if back != readme_id:
            self.errors.append(f"{where}: {actual_id} is README id {back} earlier, but README shows {readme_id} here")

    def json(self, expected, actual, where: str) -> None:
        if isinstance(expected, dict):
            if not isinstance(actual, dict):
                self.errors.append(f"{where}: README shows an object, got {actual!r}")
                return
            if set(expected) != set(actual):
                self.errors.append(
                    f"{where}: keys differ: README {sorted(expected)}, actual {sorted(actual)} "
                    f"(missing {sorted(set(expected) - set(actual))}, extra {sorted(set(actual) - set(expected))})"
                )
            for key in expected:  # in the README's order, so that id mismatches are reported where they start
                if key in actual:
                    self.json(expected[key], actual[key], f"{where}.{key}")
        elif isinstance(expected, list):
            if not isinstance(actual, list) or len(actual) != len(expected):
                self.errors.append(f"{where}: README shows {expected!r}, got {actual!r}")
                return
            for index, (item, got) in enumerate(zip(expected, actual, strict=True)):
                self.json(item, got, f"{where}[{index}]")
        elif isinstance(expected, str) and SNOWFLAKE_RE.fullmatch(expected):
            try:
                check_snowflake(actual, since_ms=self.since_ms)
            except AssertionError as error:
                self.errors.append(f"{where}: {error}")
                return
            self.same_thing(expected, actual, where)
        elif where.endswith(".code") and isinstance(expected, str):
            # Invite codes are random: any code of the server's alphabet, the same one wherever the README repeats it.
            if not (isinstance(actual, str) and INVITE_CODE_RE.fullmatch(actual)):
                self.errors.append(f"{where}: expected an invite code, got {actual!r}")
            else:
                self.same_thing(expected, actual, where)
        elif isinstance(expected, str) and TIMESTAMP_RE.fullmatch(expected):
            if not (isinstance(actual, str) and TIMESTAMP_RE.fullmatch(actual)):
                self.errors.append(f"{where}: expected a timestamp, got {actual!r}")
        elif where.endswith(".preview") and isinstance(expected, str):
            if not (isinstance(actual, str) and actual and BASE64_RE.fullmatch(actual)):
                self.errors.append(f"{where}: expected a preview image (base64), got {actual!r}")
        elif isinstance(expected, str) and expected.startswith("cmt_"):
            if not (isinstance(actual, str) and TOKEN_RE.fullmatch(actual)):
                self.errors.append(f"{where}: expected a token (cmt_...), got {actual!r}")
            else:
                self.tokens.add(actual)
        elif type(expected) is not type(actual) or expected != actual:
            self.errors.append(f"{where}: README shows {expected!r}, got {actual!r}")


@pytest.fixture(scope="module")
def walkthrough_server(e2e_module):
    """`communities serve` on a fresh SQLite file, the one the walk-through's CLI commands use too."""
    database = e2e_module.sqlite_url()
    return e2e_module.server(database=database), database


def test_readme_walkthrough(e2e_module, walkthrough_server):
    e2e = e2e_module
    steps = walkthrough_steps(README.read_text())
    assert steps, "no ```sh blocks between the walkthrough markers"
    assert any(README_ADDRESS in step.command for step in steps), f"the walk-through never calls {README_ADDRESS}"

    server, database = walkthrough_server
    script = build_script(steps, server.address)
    (e2e.tmp_path / "walkthrough.sh").write_text(script)
    result = run(
        ["bash", "-euo", "pipefail", str(e2e.tmp_path / "walkthrough.sh")],
        env=clean_env(COMMUNITIES_DATABASE=database),
        timeout=60,
    )
    stdouts, before_out = split_output(result.stdout)
    stderrs, before_err = split_output(result.stderr)

    def block_report(index: int) -> str:
        key = f"BLOCK {index}"
        return (
            f"README block {index}:\n{steps[index].command}\n--- its stdout\n{stdouts.get(key, '')}\n"
            f"--- its stderr\n{stderrs.get(key, '')}"
        )

    started = [int(key.split()[1]) for key in stdouts if key.startswith("BLOCK")]
    if result.returncode != 0 or "END" not in stdouts:
        failed = max(started) if started else None
        where = block_report(failed) if failed is not None else result.describe()
        pytest.fail(f"the walk-through script failed (exit {result.returncode}) in\n{where}\n\n{server.describe()}")
    assert before_out == "" and before_err == ""

    exported = json.loads(stdouts["END"])
    e2e.secrets.update(value for value in exported.values() if TOKEN_RE.fullmatch(value))

    comparison = Comparison(since_ms=e2e.started_ms)
    for index, step in enumerate(steps):
        out, err = stdouts[f"BLOCK {index}"], stderrs[f"BLOCK {index}"]
        e2e.secrets.update(TOKEN_RE.findall(out + err))
        where = f"README block {index}"
        if step.expected is None:
            if out or err:
                comparison.errors.append(
                    f"{where} shows no output in the README but printed some:\n{block_report(index)}"
                )
            continue
        # grpcurl prints answers on stdout and (with -format-error) errors on stderr.
        if out.strip():
            actual, stream = out, "stdout"
            if err:
                comparison.errors.append(f"{where}: unexpected stderr:\n{err}")
        else:
            actual, stream = err, "stderr"
        if step.expected_lang == "json":
            expected_value = json.loads(step.expected)
            try:
                actual_value = json.loads(actual)
            except ValueError:
                comparison.errors.append(f"{where}: {stream} is not JSON:\n{block_report(index)}")
                continue
            before = len(comparison.errors)
            comparison.json(expected_value, actual_value, where)
            if len(comparison.errors) > before:
                comparison.errors.append(f"({where} printed on {stream}:\n{actual})")
        elif actual.strip("\n").splitlines() != step.expected.strip("\n").splitlines():
            comparison.errors.append(
                f"{where}: output differs from the README\n--- README\n{step.expected}--- actual ({stream})\n{actual}"
            )
    if comparison.errors:
        pytest.fail("README walk-through mismatches:\n" + "\n".join(comparison.errors), pytrace=False)

    # Ids the README shows were minted during this test by this server (worker 0, the default) or, for the users
    # the walk-through creates, by the operator CLI (a worker id it leases, 1000..1023). Invite codes are not ids.
    for actual_id in comparison.ids.values():
        if actual_id.isdigit():
            assert worker_of(actual_id) == 0 or worker_of(actual_id) in CLI_WORKER_IDS, actual_id

    # What the prose claims beyond the outputs: the token is a bot's, settings merge (the system channel the
    # community was made with is still there, join messages off), and each call was logged with the bot.
    token = exported.get("TOKEN")
    community = exported.get("COMMUNITY")
    if token:
        me = grpcurl(server.address, "communities.v1.Users/GetSelf", authorization=f"Bot {token}").ok().json()
        assert me.get("bot") is True, me
        bot_id = me["id"]
        created = [line for line in server.call_log_lines("/communities.v1.Communities/CreateCommunity")]
        assert any(f"principal=bot:{bot_id} status=OK duration_ms=" in line for line in created), created
        if community:
            assert community in comparison.ids.values(), (community, comparison.ids)
            settings = grpcurl(
                server.address,
                "communities.v1.Communities/GetSettings",
                data={"community_id": community},
                authorization=f"Bot {token}",
            ).ok()
            edit_steps = [i for i, step in enumerate(steps) if "EditSettings" in step.command and step.expected]
            if edit_steps:
                assert settings.json() == json.loads(stdouts[f"BLOCK {edit_steps[-1]}"]), settings.stdout

    e2e.assert_no_secret_logged()


def test_grpcurl_list_shows_the_services(walkthrough_server):
    server, _ = walkthrough_server
    listed = grpcurl(server.address).ok().stdout.split()
    for service in ("communities.v1.Communities", "communities.v1.Users", "grpc.health.v1.Health"):
        assert service in listed, listed
