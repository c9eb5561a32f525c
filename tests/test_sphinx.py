"""The Sphinx extension on real `sphinx-build` runs (html, dirhtml, singlehtml): the plan it
writes against a baseline, dry runs, a purge through the local Cloudflare, failed builds, bad
config values and Sphinx's own noise (issue 14)."""

from __future__ import annotations

import json
import re
import shlex
import struct
import subprocess
import sys
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from sphinx.application import Sphinx
from sphinx.cmd.build import build_main
from sphinx.util.docutils import docutils_namespace

from mkdocs_cfpurge import pipeline
from mkdocs_cfpurge.build.marker import MARKER_NAME
from mkdocs_cfpurge.errors import ConfigError
from mkdocs_cfpurge.localcf import LocalCloudflare
from mkdocs_cfpurge.localcf.origin import OriginServer
from mkdocs_cfpurge.settings import OPTION_NAMES, Options, check_option
from mkdocs_cfpurge.sphinx import options_from_config
from tests.helpers import (
    TOKEN,
    ZONE_ID,
    NetworkTrap,
    forbid_network,
    run_main,
    subprocess_env,
    tree_bytes,
    write_files,
)
from tests.test_options import REFUSED
from tests.test_purge import fast_clients

BASE = "https://docs.example.com/handbook/"
STATE = "state"  # cfpurge's files, relative to conf.py's folder
# A page of the project, each in its own folder kind: nested, non-ASCII, spaced.
PAGES: dict[str, str] = {
    "guide/index.rst": "Guide\n=====\n\nThe guide.\n",
    "guide/deep/page.rst": "Deep page\n=========\n\nDeep text.\n\n.. py:function:: f(x)\n\n"
    "   Does f.\n",
    "fête/été.rst": "Été\n===\n\nNon-ASCII names.\n",
    "my page.rst": "My page\n=======\n\nA name with a space.\n",
}
INDEX = """Handbook
========

.. toctree::

{toctree}

Welcome.

.. image:: pic.png

:download:`The data <data.csv>`
"""


def png(red: int) -> bytes:
    """A 1x1 PNG of this red level: a real image whose bytes an edit changes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(bytes([0, red, 0, 0]))
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def conf_py(values: Mapping[str, Any]) -> str:
    lines = [
        'project = "Handbook"',
        'copyright = "2026, Us"',
        'extensions = ["mkdocs_cfpurge.sphinx"]',
    ]
    lines += [f"{name} = {value!r}" for name, value in values.items()]
    return "\n".join(lines) + "\n"


def write_project(src: Path, pages: Mapping[str, str] = PAGES, **conf: Any) -> Path:
    """A Sphinx project in `src`: conf.py with the extension (and `conf`), the index with a
    toctree of `pages`, an image and a download. Returns `src`."""
    values: dict[str, Any] = {"html_baseurl": BASE, "cfpurge_manifest": f"{STATE}/manifest.json"}
    values["cfpurge_plan_file"] = f"{STATE}/plan.json"
    # docs.example.com is not served here: no test reads a live marker off this machine.
    values["cfpurge_live_baseline"] = False
    values.update(conf)
    toctree = "\n".join(f"   {name.removesuffix('.rst')}" for name in pages)
    files: dict[str, str | bytes] = {
        "conf.py": conf_py(values),
        "index.rst": INDEX.format(toctree=toctree),
        "data.csv": "a,b\n1,2\n",
        "pic.png": png(0xFF),
        **pages,
    }
    write_files(src, files)
    return src


def sphinx_build(src: Path, out: Path, builder: str = "html", *args: str) -> int:
    """`sphinx-build -b BUILDER SRC OUT ARGS`, in this process (Sphinx's own entry point)."""
    return build_main(["-b", builder, "-q", *args, str(src), str(out)])


def read_json(path: Path) -> Any:
    return json.loads(path.read_bytes())


def plan_urls(plan: Mapping[str, Any]) -> tuple[set[str], set[str]]:
    """The plan's `files` URLs, and its prefixes."""
    urls: set[str] = set()
    prefixes: set[str] = set()
    for body in plan["requests"]:
        urls.update(
            item if isinstance(item, str) else item["url"] for item in body.get("files", [])
        )
        prefixes.update(body.get("prefixes", []))
    return urls, prefixes


def covered(url: str, urls: set[str], prefixes: set[str]) -> bool:
    bare = url.split("://", 1)[1]
    return url in urls or any(bare.startswith(prefix) for prefix in prefixes)


def published(root: Path) -> dict[str, bytes]:
    """What a deploy of a Sphinx output folder serves: every file but Sphinx's doctrees (not
    pages) and cfpurge's own marker."""
    return {
        path: data
        for path, data in tree_bytes(root).items()
        if not path.startswith(".doctrees/") and path != MARKER_NAME
    }


def served_urls(path: str) -> list[str]:
    """The URLs a visitor requests a file at, worked out here apart from plan/urls.py: the
    path under the base URL, percent-encoded as Sphinx links it; an index.html is also
    requested as its folder."""
    urls = [BASE + quote(path)]
    if path == "index.html" or path.endswith("/index.html"):
        urls.append(BASE + quote(path.removesuffix("index.html")))
    return urls


def changed_files(before: Mapping[str, bytes], after: Mapping[str, bytes]) -> set[str]:
    return {path for path in before.keys() | after.keys() if before.get(path) != after.get(path)}


@pytest.fixture(autouse=True)
def _elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Paths in conf.py are relative to its folder, not to where sphinx-build runs.
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    yield


@pytest.fixture
def trap(monkeypatch: pytest.MonkeyPatch) -> NetworkTrap:
    return forbid_network(monkeypatch)


# --- the extension as a module --------------------------------------------------------------


def test_the_extension_imports_nothing_of_mkdocs() -> None:
    code = (
        "import sys, mkdocs_cfpurge.sphinx\n"
        "loaded = sorted(m for m in sys.modules if m == 'mkdocs' or m.startswith('mkdocs.'))\n"
        "print(loaded)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


def test_every_option_is_a_config_value_with_its_declared_default(tmp_path: Path) -> None:
    src = write_project(tmp_path / "src")
    (src / "conf.py").write_text(conf_py({"html_baseurl": BASE}))
    # Sphinx registers directives in docutils' global tables: give them back afterwards, as
    # sphinx-build does, or later builds in this process warn about duplicates.
    with docutils_namespace():
        app = Sphinx(src, src, tmp_path / "out", tmp_path / "doctrees", "html", None, None)
    for name in OPTION_NAMES:
        assert app.config["cfpurge_" + name] == Options.model_fields[name].default, name
    # Left at their defaults, the values come from the same variables as the plugin's and CLI's.
    local = "http://127.0.0.1:9/client/v4"
    env = {"CLOUDFLARE_API_BASE": local, "CLOUDFLARE_ZONE_ID": ZONE_ID, "CFPURGE_DRY_RUN": "1"}
    options = options_from_config(app.config, env)
    assert (options.api_base, options.zone_id, options.dry_run) == (local, ZONE_ID, True)
    app.config["cfpurge_api_base"] = "http://127.0.0.1:8/client/v4"
    assert options_from_config(app.config, env).api_base == "http://127.0.0.1:8/client/v4"


LATE_WRITER = """
from pathlib import Path

def setup(app):
    def write(app, exception):
        Path(app.outdir, "sitemap.xml").write_text("<urlset/>")
    app.connect("build-finished", write)  # Sphinx's default priority, like most extensions
"""


def test_it_hashes_after_the_other_extensions_wrote(tmp_path: Path) -> None:
    src = write_project(tmp_path / "src", cfpurge_dry_run=True)
    write_files(src, {"late_writer.py": LATE_WRITER})
    conf = (src / "conf.py").read_text()
    conf += "import os, sys\nsys.path.insert(0, os.path.dirname(__file__))\n"
    (src / "conf.py").write_text(conf + 'extensions.append("late_writer")\n')
    out = tmp_path / "out"
    assert sphinx_build(src, out) == 0
    assert "sitemap.xml" in read_json(out / MARKER_NAME)["manifest"]


# --- the plan of a build against a baseline (issue 14, "Done when") ---------------------------


def edit_project(src: Path) -> None:
    """A deploy's worth of edits: a page changed, one added (in a new folder), one deleted, the
    image replaced."""
    pages = {name: text for name, text in PAGES.items() if name != "fête/été.rst"}
    pages["guide/index.rst"] = "Guide\n=====\n\nThe guide, now longer.\n"
    pages["nouveau/café crème.rst"] = "Café crème\n==========\n\nA new page.\n"
    (src / "fête" / "été.rst").unlink()
    (src / "fête").rmdir()
    write_project(src, pages, cfpurge_dry_run=True, cfpurge_purge_on=["build"])
    (src / "pic.png").write_bytes(png(0x10))


@pytest.mark.parametrize("builder", ["html", "dirhtml"])
def test_a_build_after_a_baseline_plans_every_url_of_every_changed_file_and_sends_nothing(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    trap: NetworkTrap,
    builder: str,
) -> None:
    # Everything a purge needs is there (purge_on: build, zone, token): only the dry run stands
    # between this build and Cloudflare.
    monkeypatch.setenv("CLOUDFLARE_ZONE_ID", ZONE_ID)
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    src = write_project(tmp_path / "src", cfpurge_dry_run=True, cfpurge_purge_on=["build"])
    before, after = tmp_path / "out1", tmp_path / "out2"
    assert sphinx_build(src, before, builder) == 0
    manifest = src / STATE / "manifest.json"
    code, out, _ = run_main(
        ["manifest", str(before), "--site-url", BASE, "--out", str(manifest)], capsys
    )
    assert code == 0, out
    baseline = manifest.read_bytes()

    edit_project(src)
    assert sphinx_build(src, after, builder) == 0  # a fresh folder, as on a CI runner

    plan = read_json(src / STATE / "plan.json")
    urls, prefixes = plan_urls(plan)
    changed = changed_files(published(before), published(after))
    assert {c["path"] for c in plan["changes"] if not c["path"].endswith("/")} >= changed
    for path in changed:
        for url in served_urls(path):
            assert covered(url, urls, prefixes), (path, url)
    # Precisely those: the doctrees and the unchanged pages are not in the plan.
    planned_files = {c["path"] for c in plan["changes"] if c.get("urls") and "." in c["path"]}
    assert planned_files == changed
    page = "guide/index.html"
    assert {BASE + "guide/", BASE + "guide/index.html"} <= urls
    added = "nouveau/café crème.html" if builder == "html" else "nouveau/café crème/index.html"
    assert added in changed
    assert BASE + quote(added) in urls
    assert page in changed and "_images/pic.png" in changed

    assert trap.calls == []
    assert manifest.read_bytes() == baseline
    assert not (src / STATE / "pending.json").exists()
    assert (src / STATE / "plan.md").is_file()
    # The marker published with the build says what this deploy's purge is about.
    marker = read_json(after / MARKER_NAME)
    assert marker["site_url"] == BASE
    assert set(marker["owed"]) == changed


def test_a_runner_with_no_state_plans_against_the_marker_the_origin_serves(
    tmp_path: Path,
) -> None:
    """The stateless flow (issue 11) on Sphinx: no manifest kept, the live site is the baseline."""
    out1, out2 = tmp_path / "out1", tmp_path / "out2"
    out1.mkdir()
    with OriginServer(out1) as origin:
        live: dict[str, Any] = {"cfpurge_dry_run": True, "cfpurge_live_baseline": True}
        live["cfpurge_origin_url"] = origin.url
        src = write_project(tmp_path / "src", **live)
        assert sphinx_build(src, out1) == 0  # deployed: the origin serves it, marker included
        assert not (src / STATE / "manifest.json").exists()
        pages = {name: text for name, text in PAGES.items() if name != "fête/été.rst"}
        pages["guide/index.rst"] = "Guide\n=====\n\nThe guide, now longer.\n"
        (src / "fête" / "été.rst").unlink()
        write_project(src, pages=pages, **live)
        assert sphinx_build(src, out2) == 0  # a fresh folder, as on a CI runner

    plan = read_json(src / STATE / "plan.json")
    assert plan["baseline"]["source"] == "live-marker"
    planned = {c["path"] for c in plan["changes"] if c.get("urls") and "." in c["path"]}
    assert planned == changed_files(published(out1), published(out2))
    assert "guide/index.html" in planned and "fête/été.html" in planned


# --- a purge through the local Cloudflare -----------------------------------------------------


@pytest.fixture
def www(tmp_path: Path) -> Path:
    """The folder the origin serves: the site lives in its handbook/ folder (html_baseurl)."""
    root = tmp_path / "www"
    (root / "handbook").mkdir(parents=True)
    return root


@pytest.fixture
def cf_options(www: Path) -> dict[str, Any]:
    return {"origin": www}


@pytest.fixture
def purging_conf(cf: LocalCloudflare, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """conf.py values that make sphinx-build purge through `cf` (the token in the environment)."""
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    return {
        "cfpurge_purge_on": ["build"],
        "cfpurge_zone_id": ZONE_ID,
        "cfpurge_api_base": cf.api_base,
    }


def test_purge_on_build_purges_the_changed_pages_through_the_edge(
    tmp_path: Path, www: Path, cf: LocalCloudflare, purging_conf: dict[str, Any]
) -> None:
    src = write_project(tmp_path / "src", **purging_conf)
    out = www / "handbook"
    assert sphinx_build(src, out) == 0  # the first build records the baseline
    assert cf.purges == []
    edited, unchanged = BASE + "my%20page.html", BASE + "guide/deep/page.html"
    for url in (edited, unchanged):
        cf.edge_fetch(url)
    assert cf.edge_fetch(edited).cache_status == "HIT"

    pages = {**PAGES, "my page.rst": "My page\n=======\n\nA name with a space, edited.\n"}
    write_project(src, pages, **purging_conf)
    assert sphinx_build(src, out) == 0  # built straight into the folder the origin serves

    purged = {url for record in cf.purges for url in record.items}
    assert edited in purged and unchanged not in purged
    fresh = cf.edge_fetch(edited)
    assert fresh.cache_status == "MISS" and b"edited" in fresh.body
    assert cf.edge_fetch(unchanged).cache_status == "HIT"
    manifest = read_json(src / STATE / "manifest.json")
    assert manifest["files"]["my page.html"]  # the manifest is committed after the purge
    assert not (src / STATE / "pending.json").exists()


def test_the_command_it_prints_sends_the_purge_after_the_deploy(
    tmp_path: Path,
    cf: LocalCloudflare,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # purge_on left as it is: sphinx-build only plans, the deploy job sends.
    conf: dict[str, Any] = {
        "cfpurge_ignore_changes": ["sphinx-last-updated"],
        "cfpurge_strategy": "files",
        "cfpurge_wait_for_origin": False,
        "cfpurge_api_base": cf.api_base,
    }
    src = write_project(tmp_path / "src", **conf)
    out = tmp_path / "out"
    assert sphinx_build(src, out) == 0
    manifest = src / STATE / "manifest.json"
    assert (
        run_main(["manifest", str(out), "--site-url", BASE, "--out", str(manifest)], capsys)[0] == 0
    )
    write_project(src, {**PAGES, "guide/index.rst": "Guide\n=====\n\nEdited.\n"}, **conf)
    capsys.readouterr()
    assert build_main(["-b", "html", str(src), str(out)]) == 0
    printed = capsys.readouterr().out
    assert cf.purges == []
    command = re.search(r"After the deploy, send it with: (.*)", printed)
    assert command is not None, printed
    argv = shlex.split(command.group(1))
    assert argv[:2] == ["mkdocs-cfpurge", "purge"]
    assert "--ignore-changes" in argv and "--exclude" in argv

    planned = read_json(src / STATE / "plan.json")["requests"]
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    monkeypatch.setenv("CLOUDFLARE_ZONE_ID", ZONE_ID)
    code, _, err = run_main(argv[1:], capsys)
    assert code == 0, err
    assert [r["body"] for r in cf.requests if r["method"] == "POST"] == planned
    assert BASE + "guide/" in planned[0]["files"]


# --- builds that must not plan or send ---------------------------------------------------------


FAILING_EXTENSION = """
def setup(app):
    def fail(app, pagename, templatename, context, doctree):
        raise RuntimeError("a theme extension failed")
    app.connect("html-page-context", fail)
"""


@pytest.mark.parametrize("failure", ["exception", "warnings-as-errors"])
def test_a_failed_build_plans_nothing_and_sends_nothing(
    tmp_path: Path, cf: LocalCloudflare, purging_conf: dict[str, Any], failure: str
) -> None:
    src = write_project(tmp_path / "src", **purging_conf)
    out = tmp_path / "out"
    strict = ["-W"] if failure == "warnings-as-errors" else []
    assert sphinx_build(src, out, "html", *strict) == 0  # no warning yet
    state = tree_bytes(src / STATE)
    assert (src / STATE / "manifest.json").is_file()

    pages = {**PAGES, "my page.rst": "My page\n=======\n\nEdited.\n"}
    if failure == "exception":
        write_files(src, {"failing.py": FAILING_EXTENSION})
        write_project(src, pages, **purging_conf)
        conf_text = (src / "conf.py").read_text()
        conf_text += "import sys, os\nsys.path.insert(0, os.path.dirname(__file__))\n"
        conf_text += 'extensions.insert(0, "failing")\n'
        (src / "conf.py").write_text(conf_text)
    else:
        pages["my page.rst"] += "\n.. no-such-directive::\n"
        write_project(src, pages, **purging_conf)
    (out / MARKER_NAME).unlink()

    assert sphinx_build(src, out, "html", *strict) != 0
    assert cf.requests == []
    assert tree_bytes(src / STATE) == state  # no plan, no pending purge, the manifest as it was
    assert not (out / MARKER_NAME).exists()


@pytest.mark.parametrize(("option", "value", "problem"), REFUSED)
def test_a_bad_config_value_stops_the_build_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, value: Any, problem: str
) -> None:
    src = write_project(tmp_path / "src", **{"cfpurge_" + option: value})
    out = tmp_path / "out"
    assert sphinx_build(src, out) == 2
    err = capsys.readouterr().err
    with pytest.raises(ConfigError) as refused:
        check_option(option, value)
    assert problem in refused.value.problem
    # The same problem text as the plugin and the CLI, naming conf.py's value.
    assert f"config value 'cfpurge_{option}': {refused.value.problem}" in err
    assert not out.exists() or not (out / MARKER_NAME).exists()
    assert not (src / STATE).exists()


def test_a_bad_variable_is_named_as_the_config_value_it_fills(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLOUDFLARE_ZONE_ID", "not-a-zone")
    src = write_project(tmp_path / "src")
    assert sphinx_build(src, tmp_path / "out") == 2
    assert (
        "config value 'cfpurge_zone_id': 'not-a-zone' is not a zone id" in capsys.readouterr().err
    )


@pytest.mark.parametrize(
    ("baseurl", "message"),
    [
        ("", "html_baseurl is not set"),
        ("ftp://docs.example.com/", "config value 'html_baseurl': 'ftp://docs.example.com/' must"),
    ],
)
def test_html_baseurl_is_required_for_the_html_builders(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], baseurl: str, message: str
) -> None:
    src = write_project(tmp_path / "src", html_baseurl=baseurl)
    assert sphinx_build(src, tmp_path / "out") == 2
    assert message in capsys.readouterr().err
    assert not (src / STATE).exists()


def test_a_purging_build_without_credentials_stops_before_building(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = write_project(tmp_path / "src", cfpurge_purge_on=["build"], cfpurge_zone_id=ZONE_ID)
    out = tmp_path / "out"
    assert sphinx_build(src, out) == 2
    assert "config value 'cfpurge_api_token': is not set" in capsys.readouterr().err
    assert not (out / "index.html").exists()


def test_other_builders_leave_it_inert_and_say_so_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], trap: NetworkTrap
) -> None:
    # No html_baseurl either: it is only needed for the HTML builders.
    src = write_project(tmp_path / "src", html_baseurl="", cfpurge_purge_on=["build"])
    out = tmp_path / "out"
    assert build_main(["-b", "text", str(src), str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.count("cfpurge:") == 1
    assert "the text builder writes no web site: nothing is hashed or purged" in printed
    assert not (out / MARKER_NAME).exists() and not (src / STATE).exists()
    assert trap.calls == []


def test_enabled_false_turns_it_off(tmp_path: Path, trap: NetworkTrap) -> None:
    src = write_project(tmp_path / "src", cfpurge_enabled=False, html_baseurl="")
    assert sphinx_build(src, tmp_path / "out") == 0
    assert not (src / STATE).exists() and not (tmp_path / "out" / MARKER_NAME).exists()


def test_singlehtml_plans_its_one_page(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = write_project(tmp_path / "src", cfpurge_dry_run=True)
    before, after = tmp_path / "out1", tmp_path / "out2"
    assert sphinx_build(src, before, "singlehtml") == 0
    manifest = src / STATE / "manifest.json"
    assert (
        run_main(["manifest", str(before), "--site-url", BASE, "--out", str(manifest)], capsys)[0]
        == 0
    )
    write_project(
        src, {**PAGES, "my page.rst": "My page\n=======\n\nEdited.\n"}, cfpurge_dry_run=True
    )
    assert sphinx_build(src, after, "singlehtml") == 0
    urls, _ = plan_urls(read_json(src / STATE / "plan.json"))
    assert {BASE, BASE + "index.html"} <= urls
    assert changed_files(published(before), published(after)) == {"index.html"}


# --- Sphinx's own noise -------------------------------------------------------------------------


def cli_sphinx_build(src: Path, out: Path, builder: str, *, epoch: str, hash_seed: str) -> None:
    """A real `sphinx-build` process at the time `epoch`, with Python's string hashing seeded
    (set iteration order differs between two processes unless pinned)."""
    env = subprocess_env(SOURCE_DATE_EPOCH=epoch, PYTHONHASHSEED=hash_seed)
    command = [sys.executable, "-m", "sphinx", "-b", builder, "-q", str(src), str(out)]
    subprocess.run(command, env=env, check=True, timeout=240, capture_output=True)


@pytest.mark.slow
@pytest.mark.parametrize("builder", ["html", "dirhtml"])
@pytest.mark.parametrize("presets", [["sphinx-last-updated"], []])
def test_rebuilding_unchanged_sources_plans_nothing_with_the_presets_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], builder: str, presets: list[str]
) -> None:
    conf: dict[str, Any] = {
        "html_theme": "classic",  # its footer shows html_last_updated_fmt
        "html_last_updated_fmt": "%Y-%m-%d %H:%M:%S",
        "cfpurge_ignore_changes": presets,
        "cfpurge_dry_run": True,
    }
    src = write_project(tmp_path / "src", **conf)
    before, after = tmp_path / "out1", tmp_path / "out2"
    cli_sphinx_build(src, before, builder, epoch="1767225600", hash_seed="1")  # 2026-01-01
    manifest = src / STATE / "manifest.json"
    flags = [arg for preset in presets for arg in ("--ignore-changes", preset)]
    argv = ["manifest", str(before), "--site-url", BASE, "--out", str(manifest), *flags]
    assert run_main(argv, capsys)[0] == 0
    cli_sphinx_build(src, after, builder, epoch="1767312000", hash_seed="2")  # a day later

    pages = [p for p in published(before) if p.endswith(".html")]
    stamped = [p for p in pages if b"Last updated on 2026-01-01" in published(before)[p]]
    assert sorted(stamped) == sorted(pages)  # the noise is there, on every page
    plan = read_json(src / STATE / "plan.json")
    if presets:
        assert plan["changes"] == [] and plan["requests"] == []
    else:
        assert {c["path"] for c in plan["changes"]} == set(pages)


def test_the_preset_hides_the_date_but_not_an_edit_beside_it() -> None:
    from mkdocs_cfpurge.build.noise import make_normalizer

    normalize = make_normalizer(["sphinx-last-updated"])
    assert normalize is not None

    def footer(date: str, text: str = "") -> bytes:
        return (
            f'<div class="footer">{text}\n      Last updated on {date}.\n'
            '  Created using <a href="x">Sphinx</a></div>'
        ).encode()

    first = normalize("index.html", footer("Jan 01, 2026"))
    assert normalize("index.html", footer("Jan 02, 2026")) == first
    assert normalize("index.html", footer("Jan 02, 2026", "&#169; 2027")) != first
    assert normalize("index.html", footer("Jan 02, 2026").replace(b"Created", b"Made")) != first
    # Only HTML pages: a text file's sentence is content.
    text = b"Last updated on Jan 01, 2026."
    assert normalize("notes.txt", text) == text


def test_a_removed_document_whose_page_stays_in_the_output_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = write_project(tmp_path / "src", cfpurge_dry_run=True)
    out = tmp_path / "out"
    assert sphinx_build(src, out) == 0
    manifest = src / STATE / "manifest.json"
    assert (
        run_main(["manifest", str(out), "--site-url", BASE, "--out", str(manifest)], capsys)[0] == 0
    )
    pages = {name: text for name, text in PAGES.items() if name != "my page.rst"}
    (src / "my page.rst").unlink()
    write_project(src, pages, cfpurge_dry_run=True)
    assert sphinx_build(src, out) == 0  # the same folder: Sphinx leaves my page.html there
    assert (out / "my page.html").is_file()
    err = capsys.readouterr().err
    assert "1 removed document(s) left their page in" in err and ": my page;" in err
    plan = read_json(src / STATE / "plan.json")
    assert "my page.html" not in {c["path"] for c in plan["changes"]}  # still served as it was


def test_a_failed_purge_fails_the_build_and_keeps_what_is_owed(
    tmp_path: Path,
    www: Path,
    cf: LocalCloudflare,
    purging_conf: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(pipeline, "default_client", fast_clients([], attempts=2))
    src = write_project(tmp_path / "src", **purging_conf)
    out = www / "handbook"
    assert sphinx_build(src, out) == 0
    manifest = (src / STATE / "manifest.json").read_bytes()

    write_project(src, {**PAGES, "my page.rst": "My page\n=======\n\nEdited.\n"}, **purging_conf)
    cf.fail_next(1000, 503)
    assert sphinx_build(src, out) == 2
    printed = capsys.readouterr()
    assert "mkdocs-cfpurge error" in printed.err
    assert (src / STATE / "manifest.json").read_bytes() == manifest  # not committed
    owed = read_json(src / STATE / "pending.json")["requests"]
    assert BASE + "my%20page.html" in owed[0]["files"]
    # The token never shows: not in what Sphinx printed, nor in any file written.
    assert TOKEN not in printed.out + printed.err
    for data in [*tree_bytes(src / STATE).values(), *tree_bytes(out).values()]:
        assert TOKEN.encode() not in data


def test_a_baseline_file_that_exclude_now_leaves_out_is_not_deleted(tmp_path: Path) -> None:
    # A baseline hashed with the doctrees (the CLI on a `sphinx-build -b` folder) against a build
    # that leaves them out: they are neither deleted nor purged, as `exclude` promises.
    from mkdocs_cfpurge.build.manifest import Manifest
    from tests.helpers import settings_for

    settings = settings_for(tmp_path, site_url=BASE, exclude=["/.doctrees/"])
    old = Manifest(BASE, {"index.html": "a", ".doctrees/index.doctree": "b", "gone.html": "c"})
    new = Manifest(BASE, {"index.html": "a"})
    plan = pipeline.make_plan(old, new, settings)
    assert [(c.path, c.status.value) for c in plan.changes] == [("gone.html", "deleted")]
