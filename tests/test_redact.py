"""Class 2 of issue 13: no secret leaks, not even in part.

One redaction (redact.py) runs on every text from an answer, an exception or a request before
any cut, and masks every piece of a secret MIN_FRAGMENT characters or longer wherever it sits.
A property test draws secrets, texts and cut points; the client is then attacked over real HTTP
by an error page that quotes the request's headers, with the secret straddling the cut.
"""

from __future__ import annotations

import io
import logging
import random
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mkdocs_cfpurge.cloudflare.client import SHOWN_ANSWER, CloudflareClient, RetryPolicy
from mkdocs_cfpurge.errors import CfPurgeError, PurgeFailed, UsageError
from mkdocs_cfpurge.localcf import LocalCloudflare
from mkdocs_cfpurge.log import log
from mkdocs_cfpurge.redact import MASK, clip, forget_all, redact, register
from mkdocs_cfpurge.settings import Credentials
from tests.helpers import TOKEN, ZONE_ID, MakeCf, run_main, write_files

TOKEN_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"
KEY = "0f1e2d3c4b5a69788796a5b4c3d2e1f0abcde"  # a Global API key: 37 hex digits


# The specification, not the module's constant: a piece of six characters or more matters.
MATTERS = 6


def pieces(secret: str, size: int = MATTERS) -> set[str]:
    """Every piece of `secret` `size` characters long (any longer piece holds one)."""
    size = min(size, len(secret))
    return {secret[i : i + size] for i in range(len(secret) - size + 1)}


def leaked(text: str, secret: str) -> list[str]:
    return sorted(piece for piece in pieces(secret) if piece in text)


# --- the property -------------------------------------------------------------------------------


@st.composite
def texts_with_secrets(draw: st.DrawFn) -> tuple[str, str, int]:
    """A secret, a text holding it whole and in pieces (cut anywhere), and a cut point."""
    secret = draw(st.text(TOKEN_CHARS, min_size=16, max_size=48))
    filler = st.text(st.characters(codec="utf-8"), max_size=80)
    parts = [draw(filler)]
    for _ in range(draw(st.integers(1, 4))):
        start = draw(st.integers(0, len(secret) - 1))
        end = draw(st.integers(start + 1, len(secret)))
        whole = draw(st.booleans())
        parts += [secret if whole else secret[start:end], draw(filler)]
    text = "".join(parts)
    return secret, text, draw(st.integers(0, len(text)))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts_with_secrets())
def test_no_piece_of_a_secret_survives_redaction_or_any_cut(case: tuple[str, str, int]) -> None:
    secret, text, cut = case
    try:
        register(secret)
        for out in (
            redact(text),
            clip(text, cut),  # ours: redacted, then cut
            redact(text[:cut]),  # cut by someone else (a server, a library), then redacted
            redact(text[cut:]),
        ):
            assert leaked(out, secret) == []
    finally:
        forget_all()


@settings(max_examples=200, deadline=None)
@given(
    st.text(TOKEN_CHARS, min_size=16, max_size=48),
    st.text(st.characters(codec="utf-8"), max_size=200),
)
def test_a_text_without_a_piece_of_the_secret_is_left_as_it_is(secret: str, text: str) -> None:
    if leaked(text, secret):
        return
    assert redact(text, [secret]) == text


def test_every_secret_is_masked_whole_and_in_pieces() -> None:
    text = f"token {TOKEN}; key {KEY[:20]}…; tail of the token {TOKEN[-7:]}; short {KEY[:5]}"
    assert redact(
        text, [TOKEN, KEY]
    ) == f"token {MASK}; key {MASK}…; tail of the token {MASK}; " + (
        f"short {KEY[:5]}"  # five characters tell nothing: left as they are
    )


# --- errors and logs ----------------------------------------------------------------------------


def test_every_error_masks_its_message_when_it_is_made() -> None:
    Credentials(api_token=TOKEN)  # registers the token, as every run's credentials do
    for error in (
        PurgeFailed(f"the server said: Authorization: Bearer {TOKEN[:17]}"),
        UsageError(f"…{TOKEN[9:]} was echoed"),
    ):
        assert leaked(str(error), TOKEN) == [] and leaked(repr(error), TOKEN) == []
        assert MASK in error.message


@pytest.fixture
def log_text() -> Iterator[io.StringIO]:
    """What the package's logger writes, through a plain handler (as the CLI's)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(handler)
    level = log.level
    log.setLevel(logging.DEBUG)
    yield stream
    log.removeHandler(handler)
    log.setLevel(level)


def test_nothing_the_package_logs_can_carry_a_secret(log_text: io.StringIO) -> None:
    Credentials(api_email="me@example.com", api_key=KEY)
    log.warning("cfpurge: a header %s", f"X-Auth-Key: {KEY}")
    log.info("cfpurge: cut %s", KEY[3:30])
    try:
        raise RuntimeError(f"echoed {KEY[10:]}")
    except RuntimeError:
        log.exception("cfpurge: with a traceback")
    log.debug("cfpurge: %r", {"key": KEY}, stack_info=True)
    written = log_text.getvalue()
    assert "with a traceback" in written and "RuntimeError: echoed ***" in written
    assert leaked(written, KEY) == []


# --- the client under attack, over real HTTP ----------------------------------------------------


class Recording(httpx.HTTPTransport):
    """The real transport, keeping every answer's body as it came (to know where it was cut)."""

    def __init__(self) -> None:
        super().__init__(verify=False)
        self.bodies: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        body = response.read()
        self.bodies.append(body.decode())
        return httpx.Response(response.status_code, headers=response.headers, content=body)


@pytest.mark.parametrize(
    "credentials",
    [Credentials(api_token=TOKEN), Credentials(api_email="me@example.com", api_key=KEY)],
    ids=["api token", "legacy key"],
)
def test_an_error_page_echoing_the_secret_across_the_cut_leaks_no_piece(
    make_cf: MakeCf, credentials: Credentials, caplog: pytest.LogCaptureFixture
) -> None:
    """The attack of issue 13: a non-JSON error page quoting the request headers, cut to 200
    characters for the message, the secret straddling the cut (every offset is tried)."""
    secret = credentials.api_token or KEY
    auth = {"api_token": TOKEN} if credentials.api_token else {"api_email": "me@example.com"}
    cf = make_cf(**auth, **({} if credentials.api_token else {"api_key": KEY, "api_token": None}))
    transport = Recording()
    client = CloudflareClient(
        credentials,
        ZONE_ID,
        api_base=cf.api_base,
        plan="enterprise",  # room for a purge_everything per offset without pacing
        retry=RetryPolicy(attempts=1),
        transport=transport,
        rng=random.Random(1),
    )
    straddled = 0
    with caplog.at_level(logging.DEBUG, "mkdocs.plugins.cfpurge"), client:
        for offset in range(0, SHOWN_ANSWER + 20, 3):
            cf.echo_headers_next(1, 400, before="x" * offset)
            with pytest.raises(CfPurgeError) as caught:
                client.purge({"purge_everything": True})
            page = transport.bodies[-1]
            at = page.index(secret)
            if at < SHOWN_ANSWER < at + len(secret):
                # What the old code showed: the page cut, then the whole secret replaced. It
                # ends with the secret's first characters.
                old = page[:SHOWN_ANSWER].replace(secret, "***")
                assert old.endswith(secret[: SHOWN_ANSWER - at])
                if SHOWN_ANSWER - at >= MATTERS:
                    straddled += 1
                    assert leaked(old, secret)
            assert leaked(str(caught.value), secret) == [], str(caught.value)
    assert straddled >= 3
    assert leaked(caplog.text, secret) == []


@pytest.mark.usefixtures("cf_env")
def test_the_cli_says_no_piece_of_the_token_either(
    cf: LocalCloudflare,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    site, manifest = tmp_path / "site", tmp_path / "state" / "manifest.json"
    write_files(site, {"index.html": "v1"})
    common = ["--site-url", "https://docs.example.com/"]
    assert run_main(["manifest", str(site), *common, "--out", str(manifest)], capsys)[0] == 0
    write_files(site, {"index.html": "v2"})
    for offset in range(120, 200, 9):
        cf.echo_headers_next(1, 400, before="y" * offset)
        code, out, err = run_main(
            ["purge", str(site), *common, "--manifest", str(manifest), "--strategy", "everything"],
            capsys,
        )
        assert code == 1 and "HTTP 400: <html>" in err
        assert leaked(out + err, TOKEN) == [], err
