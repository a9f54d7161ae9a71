"""Deploy bundles work on their own: unpacked into an empty directory, run by CPython 3.10 (SCF's runtime)
with nothing else on sys.path, whatever interpreter built them."""

from __future__ import annotations

import importlib
import os
import pkgutil
import re
import subprocess
import time
import typing
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import shared
from tests.conftest import CALLBACK_ENV, CALLBACK_SIGN_KEY, CONTEXT_KEY, JWT_SECRET, SECRET_ID, SECRET_KEY, SIGN_ENV
from tests.deploy.bundle_runner import run_package
from tests.deploy.scf_framework import directory_files
from tests.deploy.scripts import build, load_script
from tests.scf import load_event
from vodtesting import http_event, signed

ROOT = Path(__file__).resolve().parents[2]


def _sign_event() -> dict[str, Any]:
    import jwt

    token = jwt.encode({"sub": "bundle-user", "exp": int(time.time()) + 300}, JWT_SECRET, algorithm="HS256")
    return http_event(path="/signature", body={}, headers={"Authorization": f"Bearer {token}"})


def _callback_event() -> dict[str, Any]:
    return http_event(
        path="/vod-events", body=signed(load_event("vod_new_file_upload"), CALLBACK_SIGN_KEY), shape="function_url"
    )


@dataclass(frozen=True)
class Case:
    function: str
    env: dict[str, str]
    event: Any = None  # builds the event to invoke with; None = import only
    must_ship: tuple[str, ...] = ()
    must_not_ship: tuple[str, ...] = ()
    must_not_import: tuple[str, ...] = ()


# Weighed on every cold start and no function needs them (`make bench` shows what each costs): the
# functions log through shared.logs and their records are NamedTuples.
HEAVY = ("logging", "dataclasses", "inspect")
# What the sign and page paths need no more than Tencent's demo does: annotations only (typing), randomness
# from os.urandom (secrets, random), URLs parsed only where a database or a rare signature value needs it,
# infinities told by comparison (math).
LEAN = ("typing", "contextlib", "secrets", "random", "urllib", "math")
# OpenSSL (~4 ms): the sign path's HMACs run on CPython's own hash modules (shared/digests.py), only those it
# uses (an HS256 token, HMAC-SHA1 signatures, a SHA-256 seal: not SHA-384/512's).
OPENSSL = ("_hashlib", "hashlib", "hmac", "_ssl")
UNUSED_HASHES = ("_sha512",)

CASES = [
    Case(
        "sign",
        SIGN_ENV,
        _sign_event,
        must_ship=("jwt/__init__.py", "typing_extensions.py", "shared/http/serve.py"),
        must_not_ship=(
            "tencentcloud/",
            "psycopg2/",
            "cryptography/",
            "shared/store/",
            "shared/events.py",
            "shared/ingest.py",
        ),
        # an HS256 token: verified by shared.hs_jwt, PyJWT is for public keys only
        must_not_import=(
            "tencentcloud",
            "qcloud_cos",
            "cryptography",
            "requests",
            "flask",
            "psycopg2",
            "jwt",
            *HEAVY,
            *LEAN,
            *OPENSSL,
            *UNUSED_HASHES,
        ),
    ),
    Case(
        "callback",
        {**CALLBACK_ENV, "DATABASE_URL": "sqlite:///events.sqlite3"},
        _callback_event,
        # certifi: the CAs of VOD_CALLBACK_CONFIRM=fetch's https calls, which are made with the stdlib, not the SDK
        must_ship=("psycopg2/__init__.py", "shared/store/postgres.py", "shared/http/serve.py", "certifi/cacert.pem"),
        must_not_ship=(
            "tencentcloud/",
            "requests/",
            "urllib3/",
            "jwt/",
            "shared/vod_api.py",
            "shared/auth.py",
            "shared/signing.py",
        ),
        # SQLite users never load psycopg2; nor does anyone without VOD_CALLBACK_CONFIRM=fetch load http.client
        must_not_import=("tencentcloud", "qcloud_cos", "requests", "psycopg2", "jwt", "http.client", "certifi", *HEAVY),
    ),
    Case(
        "uploads",
        {"AUTH_JWT_SECRET": JWT_SECRET, "DATABASE_URL": "sqlite:///events.sqlite3"},
        must_ship=("jwt/__init__.py", "psycopg2/__init__.py", "shared/status_service.py"),
        must_not_ship=("tencentcloud/", "shared/ingest.py", "shared/signing.py", "shared/sign_service.py"),
        must_not_import=("tencentcloud", "psycopg2", "requests", *HEAVY),
    ),
    Case(
        "upload_page",
        {},
        lambda: http_event(path="/", method="GET", headers={"Accept-Encoding": "gzip"}, shape="function_url"),
        # the page, its script and style, and the SDK vendored from npm; nothing that reads or signs
        must_ship=(
            "static/upload.js",
            "static/page.html",
            "static/messages.json",
            "vendor/vod-js-sdk-v6.js.gz",
            "shared/upload_page.py",
        ),
        must_not_ship=("jwt/", "psycopg2/", "shared/store/", "shared/auth.py", "shared/signing.py"),
        # settings compare secrets (shared.digests.compare_digest) without loading a hash module
        must_not_import=(
            "jwt",
            "psycopg2",
            "tencentcloud",
            "sqlite3",
            "typing",
            "contextlib",
            "_sha1",
            *HEAVY,
        ),
    ),
    Case(
        "events_pull",
        {
            "TENCENTCLOUD_SECRET_ID": SECRET_ID,
            "TENCENTCLOUD_SECRET_KEY": SECRET_KEY,
            "VOD_CONTEXT_KEY": CONTEXT_KEY,
            "DATABASE_URL": "sqlite:///events.sqlite3",
        },
        must_ship=("tencentcloud/vod/v20180717/vod_client.py", "tencentcloud/common/abstract_client.py"),
        # the timer function has no HTTP at all: ingest and store only
        must_not_ship=("tencentcloud/cvm/", "qcloud_cos/", "jwt/", "bin/", "shared/http/", "shared/signing.py"),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.function)
def test_bundle_runs_from_an_empty_directory_under_python_3_10(
    bundles: Path, python310: str, tmp_path: Path, case: Case
) -> None:
    archive = zipfile.ZipFile(bundles / f"{case.function}.zip")
    names = archive.namelist()
    assert "index.py" in names and "shared/__init__.py" in names
    assert not [n for n in names if n.startswith(("tests/", "scripts/", "functions/", ".venv/", ".local/", "bin/"))]
    # SCF's code directory is read-only: bytecode must ship, compiled for CPython 3.10.
    assert "shared/__pycache__/config.cpython-310.pyc" in names
    for wanted in case.must_ship:
        assert wanted in names, wanted
    for unwanted in case.must_not_ship:
        assert not [n for n in names if n.startswith(unwanted)], unwanted

    code = tmp_path / "code"
    archive.extractall(code)
    assert directory_files(code) == directory_files(bundles / case.function)  # the zip is the directory
    event = case.event() if case.event else None
    run = run_package(python310, code, case.env, event, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.report["version"][:2] == [3, 10]
    assert not set(case.must_not_import) & set(run.report["modules"])
    assert all(path.startswith(str(code)) for path in run.report["files"].values()), run.report["files"]
    if event is not None:
        assert run.report["result"]["statusCode"] == 200, run.report["result"]


def test_records_are_made_without_compiling_their_annotations() -> None:
    """typing.NamedTuple and TypedDict compile every annotation given as text (`from __future__ import
    annotations`) when the class is made: ~2 ms of each function's cold start over shared/'s ~40 records.
    shared.records.Record keeps them as written."""
    classes = [
        value
        for info in pkgutil.walk_packages(shared.__path__, "shared.")
        for value in vars(importlib.import_module(info.name)).values()
        if isinstance(value, type) and value.__module__ == info.name
    ]
    records = [c for c in classes if hasattr(c, "_fields") or hasattr(c, "__total__")]
    assert len(records) >= 30  # the walk found them
    as_text = [
        f"{c.__module__}.{c.__qualname__}.{name}"
        for c in records
        for name, kind in c.__annotations__.items()
        if isinstance(kind, typing.ForwardRef)
    ]
    assert as_text == []


def test_a_build_by_another_python_is_the_same_bundle(
    bundles: Path, other_python: str, python310: str, tmp_path: Path
) -> None:
    # pip evaluates dependency markers for the interpreter that runs it: built naively on 3.11+, the sign
    # bundle lacks typing_extensions and `import jwt` fails on SCF's 3.10. The build must not depend on it.
    out = tmp_path / "out"
    assert build("sign", "--out", out, python=other_python).returncode == 0
    built, reference = directory_files(out / "sign"), directory_files(bundles / "sign")
    assert sorted(built) == sorted(reference)
    # Sources are byte-identical (marshal'd bytecode may differ in reference flags between runs).
    assert {n: b for n, b in built.items() if not n.endswith(".pyc")} == {
        n: b for n, b in reference.items() if not n.endswith(".pyc")
    }
    run = run_package(python310, out / "sign", SIGN_ENV, _sign_event(), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.report["result"]["statusCode"] == 200


def test_a_build_without_python_3_10_fails_loudly(other_python: str, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()  # a PATH with no python3.10 on it, and no pyenv
    env = {"PATH": str(tmp_path / "empty"), "HOME": str(tmp_path), "PYENV_ROOT": str(tmp_path / "no-pyenv")}
    result = build("sign", "--out", tmp_path / "out", python=other_python, env=env)
    assert result.returncode == 1
    assert "built for SCF's CPython 3.10" in result.stderr and "no CPython 3.10 with pip found" in result.stderr
    assert not (tmp_path / "out" / "sign").exists()


@pytest.mark.parametrize("there", [True, False], ids=["used", "missing"])
def test_build_python_is_the_interpreter_even_when_this_one_is_3_10(
    python310: str, tmp_path: Path, there: bool
) -> None:
    # A wrapper around the 3.10 that logs what it is asked to run: the build's own work must go through it.
    wanted, log = tmp_path / "python3.10", tmp_path / "calls.log"
    if there:
        wanted.write_text(f'#!/bin/sh\necho "$@" >> {log}\nexec {python310} "$@"\n')
        wanted.chmod(0o755)
    result = build("sign", "--out", tmp_path / "out", python=python310, env={**os.environ, "BUILD_PYTHON": str(wanted)})
    if not there:  # the build says so, and does not fall back to the interpreter running it
        assert result.returncode == 1 and f"at BUILD_PYTHON={wanted}" in result.stderr
        return
    assert result.returncode == 0, result.stderr
    calls = log.read_text()
    assert "pip --disable-pip-version-check --no-input install" in calls and "compileall" in calls


@pytest.mark.parametrize("function", ["sign", "callback"])
def test_no_bundle_can_verify_an_upload_signature(bundles: Path, function: str) -> None:
    """Only VOD (and the emulator standing in for it) checks upload signatures: the code that makes them
    ships no verifier that a shared mistake could hide behind."""
    shipped = scripts_of(bundles / function / "shared")
    # A verifier recomputes the HMAC-SHA1 over a decoded signature: besides the HMAC itself (digests.py, which
    # decodes nothing), only signing.py may use SHA-1 at all, and it defines the builders and nothing that reads a
    # signature back (whatever its name).
    assert "b64decode" not in shipped["digests.py"]
    using_sha1 = [name for name, text in shipped.items() if "sha1" in text and name != "digests.py"]
    assert using_sha1 == (["signing.py"] if function == "sign" else [])
    if function == "sign":
        defined = set(re.findall(r"^def (\w+)", shipped["signing.py"], re.M))
        builders = {"_fail", "_check_text", "_encodable", "_check_ints", "validate", "encode_value", "_pair"}
        assert defined == {*builders, "to_query", "_present", "query_template", "signer", "build_signature"}
        assert "b64decode" not in shipped["signing.py"]


def scripts_of(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): p.read_text() for p in root.rglob("*.py")}


def test_builds_are_repeatable(bundles: Path, tmp_path: Path) -> None:
    # Byte for byte, bytecode too (a set constant's order follows the hash seed): a deployed zip can be checked
    # against a rebuild, and a deploy of unchanged sources uploads nothing new.
    assert build("sign", "callback", "--out", tmp_path).returncode == 0
    for name in ("sign.zip", "callback.zip"):
        first, second = zipfile.ZipFile(bundles / name), zipfile.ZipFile(tmp_path / name)
        assert first.namelist() == second.namelist()
        assert [n for n in first.namelist() if first.read(n) != second.read(n)] == []
        assert (bundles / name).read_bytes() == (tmp_path / name).read_bytes()


def test_a_build_by_the_interpreter_at_another_path_is_the_same(bundles: Path, python310: str, tmp_path: Path) -> None:
    # Another checkout, CI's runner, a venv elsewhere: pip's RECORD files named its console scripts' hashes
    elsewhere = tmp_path / "elsewhere" / "python3.10"
    elsewhere.parent.mkdir()
    elsewhere.symlink_to(python310)
    built = build("callback", "--out", tmp_path, env={**os.environ, "BUILD_PYTHON": str(elsewhere)})
    assert built.returncode == 0, built.stderr
    assert (bundles / "callback.zip").read_bytes() == (tmp_path / "callback.zip").read_bytes()


@pytest.mark.parametrize(
    ("files", "compiled_as", "refused"),
    [
        # Mentions of short paths a checkout or a prefix may have (/app, /usr, /usr/local): nobody's path.
        ({"a.txt": b"https://app.example.com/ /usr/local/lib #!/usr/bin/env python\n"}, None, []),
        ({"tool.py": b"#!/usr/bin/env python3\nprint(1)\n"}, None, []),
        ({"bin/tool": b"#!{python}\nimport sys\n"}, None, ["bin/tool"]),  # pip's console-script shebang
        ({"mod.py": b"x = 1\n"}, "mod.py", []),
        ({"mod.py": b"x = 1\n"}, "/home/dev/checkout/mod.py", ["mod.pyc"]),
    ],
    ids=["short-paths", "env-shebang", "pip-shebang", "relative-bytecode", "absolute-bytecode"],
)
def test_the_build_refuses_only_real_machine_paths(
    python310: str, tmp_path: Path, files: dict[str, bytes], compiled_as: str | None, refused: list[str]
) -> None:
    # Checkouts at /app and interpreters under /usr (a distribution's python3.10) build like any other.
    script = load_script("build")
    target = tmp_path / "bundle"
    for name, data in files.items():
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        (target / name).write_bytes(data.replace(b"{python}", python310.encode()))
    if compiled_as is not None:
        source, compiled = str(target / "mod.py"), str(target / "mod.pyc")
        compile_ = f"import py_compile; py_compile.compile({source!r}, dfile={compiled_as!r}, cfile={compiled!r})"
        subprocess.run([python310, "-c", compile_], check=True)
    if not refused:
        script._check_no_machine_paths(target, python310)
        return
    with pytest.raises(script.BuildError, match="files name paths of the build machine") as caught:
        script._check_no_machine_paths(target, python310)
    assert str(caught.value).endswith(": " + ", ".join(refused))


def test_no_bundle_names_a_path_of_the_build_machine(bundles: Path) -> None:
    needles = [(str(ROOT) + "/").encode(), b"/.venv/", b"/.pyenv/"]
    names = [case.function for case in CASES]
    assert len(names) == len([p for p in (ROOT / "functions").iterdir() if (p / "index.py").exists()])
    for name in names:
        for path, data in directory_files(bundles / name).items():
            assert not [n for n in needles if n in data], f"{name}/{path}"


def test_locked_requirements_match_the_projects_pins() -> None:
    """requirements.in pins what pyproject.toml pins (the tests run against those versions), and the lock
    is up to date with requirements.in."""
    pyproject = (ROOT / "pyproject.toml").read_text()
    for source in sorted((ROOT / "functions").glob("*/requirements.in")):
        locked = (source.parent / "requirements.txt").read_text().lower().replace("_", "-")
        for line in source.read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                assert f'"{line.strip()}"' in pyproject, f"{source}: {line} is not pinned so in pyproject.toml"
                name, version = line.split("[")[0].split("==")[0], line.split("==")[1]
                assert f"{name.lower()}=={version}" in locked, f"{source.parent.name}: lock lacks {line}"


def test_an_unusable_jwt_key_fails_the_cold_start_not_every_request(
    bundles: Path, python310: str, tmp_path: Path
) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    public_pem = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    env = {**SIGN_ENV, "AUTH_JWT_SECRET": "", "AUTH_JWT_PUBLIC_KEY": public_pem}
    run = run_package(python310, bundles / "sign", env, cwd=tmp_path)
    # RS256 needs `cryptography`, which the lean sign bundle leaves out unless asked for.
    assert run.returncode != 0
    assert "AUTH_JWT_ALGORITHMS: RS256 needs the `cryptography` package" in run.stderr


HOOK = """
import json, os
from shared.hooks import plain
from shared import signing  # a shared/ module the callback itself does not use: it ships for the hook


def on_upload(committed):
    with open(os.environ["HOOK_OUT"], "a") as out:
        out.write(json.dumps(plain(committed)["dedupe_key"]) + "\\n")
"""


def test_the_after_commit_hook_ships_with_the_functions_that_run_it(python310: str, tmp_path: Path) -> None:
    # GIVEN an app's checkout with its hook package beside shared/, built with AFTER_COMMIT_HOOK set (as the
    # deploy hook does)
    project = tmp_path / "project"
    (project / "apphooks").mkdir(parents=True)
    (project / "apphooks" / "__init__.py").write_text("")
    (project / "apphooks" / "notify.py").write_text(HOOK)
    (project / "apphooks" / ".env").write_text("SECRET=x")  # not code: stays behind
    env = {**os.environ, "AFTER_COMMIT_HOOK": "apphooks.notify:on_upload"}
    out = tmp_path / "out"
    assert build("callback", "sign", "--out", out, cwd=project, env=env).returncode == 0
    # THEN the callback carries it (the sign function runs no hooks, so it does not) and calls it under 3.10
    assert (out / "callback" / "apphooks" / "notify.py").exists() and not (out / "sign" / "apphooks").exists()
    assert (out / "callback" / "shared" / "signing.py").exists() and not (
        out / "callback" / "apphooks" / ".env"
    ).exists()
    hook_env = {
        **CALLBACK_ENV,
        "DATABASE_URL": "sqlite:///events.sqlite3",
        "AFTER_COMMIT_HOOK": "apphooks.notify:on_upload",
        "HOOK_OUT": str(tmp_path / "hook.out"),
    }
    run = run_package(python310, out / "callback", hook_env, _callback_event(), cwd=tmp_path)
    assert run.returncode == 0 and run.report["result"]["statusCode"] == 200, run.stderr
    assert len((tmp_path / "hook.out").read_text().splitlines()) == 1


# "functions": the name of a package of this project too, which the build must not take for the hook's
@pytest.mark.parametrize("package", ["apphooks", "functions"])
def test_a_hook_is_built_whatever_lies_beside_it(python310: str, tmp_path: Path, package: str) -> None:
    # GIVEN a hook package (with its own tests) that imports stdlib and third-party modules, a sibling of its own
    # (relatively), shared/, and modules only for type checking or only if present, in an app checkout that also
    # has files named like those and like stdlib and third-party modules
    project = tmp_path / "project"
    (project / package / "tests").mkdir(parents=True)
    (project / package / "__init__.py").write_text("")
    (project / package / "util.py").write_text("import secrets, email.message\n\nTOKEN = secrets.token_hex\n")
    (project / package / "notify.py").write_text(
        HOOK
        + "\nimport psycopg2\nfrom . import util\nfrom typing import TYPE_CHECKING\n"
        + "if TYPE_CHECKING:\n    import appmodels\ntry:\n    import local_settings\nexcept ImportError:\n    pass\n"
    )
    (project / package / "tests" / "test_notify.py").write_text("import conftest\n")
    for shadow in ("secrets.py", "psycopg2.py", "conftest.py", "appmodels.py", "local_settings.py"):
        (project / shadow).write_text("raise ImportError('not this one')\n")
    (project / "email").mkdir()
    # WHEN the callback is built with it THEN the build takes it, and the bundle runs it under 3.10
    env = {**os.environ, "AFTER_COMMIT_HOOK": f"{package}.notify:on_upload"}
    out = tmp_path / "out"
    result = build("callback", "--out", out, cwd=project, env=env)
    assert result.returncode == 0, result.stderr
    assert "may import appmodels, local_settings" in result.stderr  # named, for a person to judge
    hook_env = {
        **CALLBACK_ENV,
        "DATABASE_URL": "sqlite:///events.sqlite3",
        "AFTER_COMMIT_HOOK": f"{package}.notify:on_upload",
        "HOOK_OUT": str(tmp_path / "hook.out"),
    }
    run = run_package(python310, out / "callback", hook_env, _callback_event(), cwd=tmp_path)
    assert run.returncode == 0 and run.report["result"]["statusCode"] == 200, run.stderr


def test_building_every_bundle_into_a_directory_removes_only_bundles_it_built(tmp_path: Path) -> None:
    # GIVEN an --out directory with the app's own files, and a bundle of a function that no longer exists
    out = tmp_path / "out"
    (out / "mysite").mkdir(parents=True)
    (out / "mysite" / "index.py").write_text("x")
    (out / "photos.zip").write_text("data")
    (out / "gone").mkdir()
    (out / "gone.zip").write_text("old bundle")
    (out / ".bundles").write_text("gone\n")  # the earlier build's own list
    # WHEN every bundle is built there THEN the old bundle goes, and nothing of the app's
    assert build("--out", out).returncode == 0
    assert (out / "mysite" / "index.py").exists() and (out / "photos.zip").exists()
    assert not (out / "gone").exists() and not (out / "gone.zip").exists()
    assert (out / "sign.zip").exists() and "gone" not in (out / ".bundles").read_text()


@pytest.mark.parametrize(
    ("deploying", "in_shell", "fails"),
    [
        (False, False, True),
        (True, False, True),
        (False, True, False),
        # This shell has it, the function would not (serverless.yml does not deploy it): every cold start would fail
        (True, True, True),
    ],
    ids=["make build", "make deploy-build", "make build, in the shell", "make deploy-build, only in the shell"],
)
def test_a_hook_that_fails_to_import_fails_the_build_for_a_deploy(
    tmp_path: Path, deploying: bool, in_shell: bool, fails: bool
) -> None:
    # `scf deploy` shows nothing of a hook command that succeeds: a note would go unread, and every cold start fail
    (tmp_path / "appqueue.py").write_text(
        "import os\n\nURL = os.environ['APP_QUEUE_URL']\n\n\ndef on_upload(c):\n    pass\n"
    )
    env = {**os.environ, "AFTER_COMMIT_HOOK": "appqueue:on_upload", "APP_QUEUE_URL": "https://queue.example"}
    if not in_shell:
        del env["APP_QUEUE_URL"]
    result = build("callback", "--out", tmp_path / "out", *(["--deploy"] if deploying else []), cwd=tmp_path, env=env)
    assert result.returncode == (1 if deploying and fails else 0) and "Traceback" not in result.stderr
    said = "importing appqueue in the bundle failed here (KeyError: 'APP_QUEUE_URL')"
    assert (said in result.stderr) is fails and ("so would every cold start" in result.stderr) is (deploying and fails)


@pytest.mark.parametrize(
    "message",
    [
        "f\"cannot use {os.environ['DATABASE_URL']} with {os.environ['VOD_CALLBACK_SIGN_KEY']}\"",
        # the key across the 300th character, where the message is cut: masked before the cut, none of it shows
        "'cannot use ' + 'x' * 268 + os.environ['VOD_CALLBACK_SIGN_KEY']",
    ],
    ids=["quoted", "across-the-cut"],
)
@pytest.mark.parametrize("deploying", [False, True], ids=["make build", "make deploy-build"])
def test_what_a_failed_hook_import_quotes_of_the_settings_is_masked(
    tmp_path: Path, deploying: bool, message: str
) -> None:
    # A hook's error may quote what it read: the build's output is the deployer's terminal, and CI's log
    (tmp_path / "appdb.py").write_text(f"import os\n\nraise ValueError({message})\n")
    database_url = "postgresql://vod_events:S3cretDbPassw0rd@10.0.0.5:5432/vod"
    env = {**os.environ, "AFTER_COMMIT_HOOK": "appdb:on_upload", "DATABASE_URL": database_url}
    env["VOD_CALLBACK_SIGN_KEY"] = "SignKey-0123456789"
    result = build("callback", "--out", tmp_path / "out", *(["--deploy"] if deploying else []), cwd=tmp_path, env=env)
    assert "importing appdb in the bundle failed here (ValueError: cannot use" in result.stderr, result.stderr
    assert "S3cretDbPassw0rd" not in result.stderr and "SignKey-" not in result.stderr


@pytest.mark.parametrize(
    ("hook", "message"),
    [
        ("nowhere.hooks:on_upload", "no nowhere/ or nowhere.py in {tmp}"),
        # As the functions would read it at their cold start: refused before a bundle that cannot load it is made
        ("apphooks.notify", "AFTER_COMMIT_HOOK: must be package.module:function (got 'apphooks.notify')"),
        ("shared.hooks:no_hook", "its package cannot be called 'shared'"),
        # what it imports from beside it would be missing from the bundle
        ("apphooks.notify:on_upload", "apphooks.notify imports appconfig, which the bundle would not have"),
        ("apphooks.relative:on_upload", "apphooks.relative imports appconfig, which the bundle"),  # through .notify
    ],
)
def test_a_hook_the_functions_cannot_load_fails_the_build(tmp_path: Path, hook: str, message: str) -> None:
    (tmp_path / "apphooks").mkdir()
    (tmp_path / "apphooks" / "__init__.py").write_text("")
    (tmp_path / "apphooks" / "notify.py").write_text("import appconfig\n\n\ndef on_upload(committed):\n    pass\n")
    (tmp_path / "apphooks" / "relative.py").write_text("from . import notify\n\non_upload = notify.on_upload\n")
    (tmp_path / "appconfig.py").write_text("URL = 'x'\n")
    env = {**os.environ, "AFTER_COMMIT_HOOK": hook}
    result = build("callback", "--out", tmp_path / "out", cwd=tmp_path, env=env)
    assert result.returncode == 1
    assert message.format(tmp=tmp_path) in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("hook", "beside", "status", "said"),
    [
        # (certifi: a package the callback's requirements.txt installs, standing for an app's hook installed so)
        ("certifi.core:where", False, 0, None),
        (
            "certifi.nothere:on_upload",
            False,
            1,
            "certifi.nothere imports certifi.nothere, which the bundle would not have",
        ),
        # the same name in the checkout too: which one the function would load is in doubt
        ("certifi.core:where", True, 1, "certifi is in {tmp} and installed in the bundle by the function's"),
    ],
    ids=["installed", "installed-but-not-importable", "installed-and-beside"],
)
def test_a_hook_the_functions_requirements_install_is_checked_as_one_beside_shared(
    tmp_path: Path, hook: str, beside: bool, status: int, said: str | None
) -> None:
    if beside:
        (tmp_path / "certifi").mkdir()
        (tmp_path / "certifi" / "__init__.py").write_text("")
    result = build(
        "callback", "--out", tmp_path / "out", "--deploy", cwd=tmp_path, env={**os.environ, "AFTER_COMMIT_HOOK": hook}
    )
    assert result.returncode == status and "Traceback" not in result.stderr, result.stderr
    assert said is None or said.format(tmp=tmp_path) in result.stderr, result.stderr
