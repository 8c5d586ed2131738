"""The user documentation cannot drift from the binary: every option of
`baowrap --help` is in docs/configuration.md with its variables and
default, every error class and warning has its section in
docs/troubleshooting.md, the
reference examples in docs/references.md are accepted or refused as they
say, links resolve, and docs/quickstart.md runs as written against a real
OpenBao."""
import os
import re
import signal
import socket
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
# Written by other issues; links to them are checked once they exist.
PENDING_DOCS = {"security.md"}


def help_options(binary) -> list:
    """(flag or None, [variables], default or None) per option in --help."""
    text = subprocess.run([binary, "--help"], capture_output=True, text=True, check=True).stdout
    options, current = [], None
    for line in text.splitlines():
        if line.startswith("  --") or line.startswith("  (no flag)"):
            flag = line.split()[0] if line.startswith("  --") else None
            current = {"flag": flag, "variables": [], "default": None}
            options.append(current)
        elif current and line.startswith("      env: "):
            current["variables"] = line[len("      env: "):].split(", then ")
        elif current and "[default: " in line:
            current["default"] = line.rsplit("[default: ", 1)[1].rstrip("]")
    assert len(options) > 20, text
    return options


def table_rows(markdown: str) -> list:
    return [l for l in markdown.splitlines() if l.startswith("| ") and not l.startswith("|---")]


def test_configuration_documents_every_option(binary):
    rows = table_rows((DOCS / "configuration.md").read_text())
    for o in help_options(binary):
        if o["flag"]:
            matching = [r for r in rows if r.startswith(f"| `{o['flag']}`") or r.startswith(f"| `{o['flag']} ")]
        else:
            matching = [r for r in rows if r.startswith("| (no flag)") and f"`{o['variables'][0]}`" in r]
        assert len(matching) == 1, f"{o} has no row of its own in docs/configuration.md"
        row = matching[0]
        cells = [c.strip() for c in row.strip("|").split(" | ")]
        for v in o["variables"]:
            assert f"`{v}`" in cells[1], f"{v} missing from the row of {o['flag']}"
        assert cells[1].count("`") // 2 == len(o["variables"]) or not o["variables"], row
        if o["default"]:
            assert o["default"] in cells[2], f"default {o['default']!r} of {o['flag']} missing: {row}"


def test_configuration_names_only_real_options(binary):
    flags = {o["flag"] for o in help_options(binary) if o["flag"]} | {"--help"}
    variables = {v for o in help_options(binary) for v in o["variables"]}
    text = (DOCS / "configuration.md").read_text()
    for flag in re.findall(r"`(--[a-z][a-z-]*)", text):
        assert flag in flags, f"docs/configuration.md mentions {flag}, which baowrap does not have"
    for var in re.findall(r"\b(BAOWRAP_[A-Z_]+)\b", text):
        assert var in variables, f"docs/configuration.md mentions {var}, which baowrap does not read"


def error_classes() -> list:
    source = (REPO / "Sources" / "BaoWrapCore" / "BaoWrapError.swift").read_text()
    body = source.split("public enum ErrorClass", 1)[1].split("\n}", 1)[0]
    classes = []
    for name, raw in re.findall(r"^\s*case (\w+)(?: = \"(\w+)\")?", body, re.M):
        classes.append(raw or name)
    assert len(classes) >= 11, body
    return classes


@pytest.mark.parametrize("error_class", error_classes())
def test_troubleshooting_covers_every_error_class(error_class):
    text = (DOCS / "troubleshooting.md").read_text()
    section = re.search(rf"^## {error_class}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert section, f"docs/troubleshooting.md has no '## {error_class}' section"
    assert len(section.group(1).split()) > 20, f"the {error_class} section says too little"


def warning_events() -> list:
    events = set()
    for source in [*(REPO / "Sources" / "BaoWrapCore").glob("*.swift"), REPO / "Sources" / "baowrap" / "main.swift"]:
        events |= set(re.findall(r'log\.warn\("(\w+)"', source.read_text()))
    assert len(events) >= 5, events
    return sorted(events)


@pytest.mark.parametrize("event", warning_events())
def test_troubleshooting_covers_every_warning(event):
    text = (DOCS / "troubleshooting.md").read_text()
    assert re.search(rf"^### {event}\n\n\S", text, re.M), f"docs/troubleshooting.md has no '### {event}' section under Warnings"


def reference_examples(heading: str) -> list:
    text = (DOCS / "references.md").read_text()
    part = text.split(f"### {heading}\n", 1)[1].split("\n#", 1)[0]
    refs = [re.match(r"\| `([^`]+)` \|", r).group(1) for r in table_rows(part)[1:]]
    assert len(refs) >= 5
    return refs


def dry_run(binary, ref):
    return subprocess.run([binary, "check", "--dry-run", "--addr", "https://openbao.example:8200", "--role", "r",
                           "--secret", f"X={ref}"], capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("ref", reference_examples("Accepted"))
def test_accepted_reference_examples_parse(binary, ref):
    r = dry_run(binary, ref)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[1].split()[0] == "X"


@pytest.mark.parametrize("ref", reference_examples("Refused"))
def test_refused_reference_examples_fail_with_config(binary, ref):
    r = dry_run(binary, ref)
    assert r.returncode == 125 and '"class":"config"' in r.stderr and '"var":"X"' in r.stderr, r.stderr


def markdown_files():
    return sorted(DOCS.glob("*.md")) + [REPO / "README.md"] + sorted((REPO / "examples").rglob("*.md"))


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(path):
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", path.read_text()):
        if re.match(r"[a-z]+:", target):
            continue
        resolved = (path.parent / target).resolve()
        if resolved.parent == DOCS and resolved.name in PENDING_DOCS and not resolved.exists():
            continue
        assert resolved.exists(), f"{path.name} links to {target}, which does not exist"


# --- the quickstart, pasted block by block ------------------------------

QS_LINE = "export QS=$HOME/baowrap-quickstart BAO_PORT=8200"


def free_port_pair() -> int:
    """A port p with p+1 free too: the dev server's cluster listener."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            p = s.getsockname()[1]
        try:
            with socket.socket() as s2:
                s2.bind(("127.0.0.1", p + 1))
            return p
        except OSError:
            continue
    raise RuntimeError("no free port pair")


def test_quickstart_runs_as_written(binary, tmp_path):
    """Every ```sh block, in order, in one bash, from the repository root,
    except `make baowrap` (make test has built the binary); only the
    quickstart's directory and port are changed so parallel runs do not
    collide. Every line of the sample outputs must appear."""
    if Path(binary).resolve() != (REPO / "dist" / "baowrap").resolve():
        pytest.skip("the quickstart runs ./dist/baowrap")
    text = (DOCS / "quickstart.md").read_text()
    blocks = re.findall(r"```(\w*)\n(.*?)```", text, re.S)
    commands = [b for lang, b in blocks if lang == "sh" and b.strip() != "make baowrap"]
    outputs = [b for lang, b in blocks if lang == ""]
    script = "\n".join(commands)
    assert QS_LINE in script
    port = free_port_pair()
    qs = tmp_path / "qs"
    script = "set -e\n" + script.replace(QS_LINE, f"export QS={qs} BAO_PORT={port}")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BAO", "VAULT_", "BAOWRAP_"))}
    try:
        r = subprocess.run(["bash", "-c", script], cwd=REPO, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=600)
    finally:
        pid_file = qs / "bao.pid"
        if pid_file.exists():
            try:
                os.kill(int(pid_file.read_text()), signal.SIGTERM)
            except ProcessLookupError:
                pass
    assert r.returncode == 0, r.stdout
    assert "correct horse battery staple" not in r.stdout
    assert not qs.exists(), "the clean-up block removes everything"
    for block in outputs:
        for line in block.strip().splitlines():
            expected = line.replace("127.0.0.1:8200", f"127.0.0.1:{port}")
            assert expected in r.stdout, f"quickstart promises {expected!r}; got:\n{r.stdout}"
