"""The deploy configuration as the Serverless Cloud Framework really reads it (tests/deploy/scf_framework.py):
each function's package is exactly its bundle, runs under CPython 3.10, and gets every setting it reads."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from shared.config import CALLBACK_MAX_BODY_BYTES, DEFAULT_DATABASE_TIMEOUT, MAX_WAIT_SECONDS
from shared.ingest import ingest_event
from shared.source_context import seal
from shared.status_service import DEFAULT_LIMIT, MAX_OUTPUT_URLS, MAX_OUTPUTS
from shared.store import open_store
from tests.conftest import (
    CALLBACK_ENV,
    CONTEXT_KEY,
    JWT_SECRET,
    KEYS,
    UNREADABLE_PUBLIC_KEY,
    user_env,
)
from tests.deploy import scf_framework
from tests.deploy.bundle_runner import run_package
from tests.deploy.conftest import CONFIG, DEPLOYER_ENV, REQUIRED_SETTINGS, ROOT
from tests.deploy.scripts import load_script
from tests.deploy.test_bundle import CASES, Case
from tests.scf import largest_task_event, load_event, outputs_event, snapshots_event
from vodemu.delivery import MAX_EVENTS_PER_PULL
from vodemu.state import PULL
from vodtesting import dev_token, http_event, sample_video, vod_event
from vodtesting.stack import VodStack

API_CONFIG = ROOT / "deploy" / "api-gateway" / "serverless.yml"
FUNCTIONS = sorted(p.name for p in (ROOT / "functions").iterdir() if (p / "index.py").exists())
# What SCF's runtime sets in every instance (besides the function's own variables).
SCF_ENV = {
    "TENCENTCLOUD_RUNENV": "SCF",
    "SCF_RUNTIME": "Python3.10",
    "SCF_FUNCTIONNAME": "vod-upload-dev-x",
    "SCF_FUNCTIONVERSION": "$LATEST",
    "SCF_NAMESPACE": "default",
    "TENCENTCLOUD_REGION": "ap-guangzhou",
}
PG_URL = "postgresql://vod@db.internal:5432/vod"  # never connected to: these runs only import or fail early
# Read by a function but deliberately absent from the deploy config, and why.
NOT_DEPLOYED = {
    "TENCENTCLOUD_SECRET_ID": "local runs; SCF reserves TENCENTCLOUD_* (VOD_SECRET_ID is passed instead)",
    "TENCENTCLOUD_SECRET_KEY": "local runs; SCF reserves TENCENTCLOUD_* (VOD_SECRET_KEY is passed instead)",
    "TENCENTCLOUD_SECRETID": "set by SCF itself from the function's execution role",
    "TENCENTCLOUD_SECRETKEY": "set by SCF itself from the function's execution role",
    "TENCENTCLOUD_SESSIONTOKEN": "set by SCF itself from the function's execution role",
    "TENCENTCLOUD_RUNENV": "set by SCF itself (tells the functions they run in SCF)",
    "SCF_RUNTIME": "set by SCF itself",
    "SCF_FUNCTIONNAME": "set by SCF itself",
    "VOD_CALLBACK_INSECURE": "local development only; refused inside SCF",
}
# Environments each function is started with, to reach every branch that reads settings.
_KEY = {"VOD_CONTEXT_KEY": "c" * 32}
VARIANTS: dict[str, list[dict[str, str]]] = {
    "sign": [
        {**_KEY, "VOD_SECRET_ID": "AKIDx", "VOD_SECRET_KEY": "k" * 32, "AUTH_JWT_SECRET": "s" * 32},
        {
            **_KEY,
            "VOD_SECRET_ID": "AKIDx",
            "VOD_SECRET_KEY": "k" * 32,
            "AUTH_MODE": "gateway",
            "AUTH_GATEWAY_SECRET": "g" * 16,
        },
    ],
    "callback": [
        {**CALLBACK_ENV, "DATABASE_URL": PG_URL},
        {
            **CALLBACK_ENV,
            "DATABASE_URL": PG_URL,
            "VOD_CALLBACK_CONFIRM": "fetch",
            "VOD_SECRET_ID": "AKIDx",
            "VOD_SECRET_KEY": "k" * 32,
        },
    ],
    "events_pull": [
        {**_KEY, "VOD_SECRET_ID": "AKIDx", "VOD_SECRET_KEY": "k" * 32, "DATABASE_URL": PG_URL},
        {
            **_KEY,
            "TENCENTCLOUD_SECRETID": "AKIDrole",
            "TENCENTCLOUD_SECRETKEY": "k" * 32,
            "TENCENTCLOUD_SESSIONTOKEN": "t",
            "DATABASE_URL": PG_URL,
        },
    ],
    "upload_page": [{}, {"UPLOAD_PAGE_FRAME_ANCESTORS": "https://app.example.com"}],
    "uploads": [
        {"AUTH_JWT_SECRET": "s" * 32, "DATABASE_URL": PG_URL},
        {"AUTH_MODE": "gateway", "AUTH_GATEWAY_SECRET": "g" * 16, "DATABASE_URL": PG_URL},
    ],
}


def functions_config() -> dict[str, Any]:
    functions: dict[str, Any] = scf_framework.load_config(CONFIG)["inputs"]["functions"]
    return functions


def deployed_variables(function: str) -> dict[str, str]:
    """The function's environment as multi-scf deploys it, before the deployer's values replace ${env:…}."""
    return scf_framework.function_variables(yaml.safe_load(CONFIG.read_text())["inputs"], function)


def documented_settings() -> set[str]:
    """Every name in a README table row's first cell (the settings and deploy tables)."""
    names: set[str] = set()
    for line in (ROOT / "README.md").read_text().splitlines():
        if line.startswith("| `"):
            names.update(re.findall(r"`([A-Z][A-Z0-9_]+)`", line.split("|")[1]))
    return names


# --- packages ------------------------------------------------------------------------------------------


def test_every_function_is_deployed_from_exactly_its_bundle(uploaded: scf_framework.Files, bundles: Path) -> None:
    functions = functions_config()
    assert sorted(functions) == FUNCTIONS
    # Only the bundles are uploaded (not the repository, not the zipped copies)...
    assert {name.split("/")[0] for name in uploaded} == set(FUNCTIONS)
    for key, function in functions.items():
        # ...and each function's package is its bundle, index.py with main_handler at the root.
        package = scf_framework.function_package(uploaded, function["src"])
        assert package == scf_framework.directory_files(bundles / key), key
        assert function["handler"] == "index.main_handler"
        assert re.search(rb"^def main_handler\(", package["index.py"], re.MULTILINE), key


def test_what_setuptools_leaves_in_build_is_not_uploaded(uploaded: scf_framework.Files, bundles: Path) -> None:
    """`pip install` of the checkout (the testing kit's install) has setuptools write its own build/lib and
    build/bdist.*: those are no function's, and go nowhere."""
    made = [bundles / part for part in ("lib", "bdist.linux-x86_64", "temp.linux-x86_64-cpython-310", "scripts-3.10")]
    made = [path for path in made if not path.exists()]  # an install's own, if any, stay as they are
    try:
        for path in made:
            (path / "shared").mkdir(parents=True)
            (path / "shared" / "config.py").write_text("# setuptools' copy\n")
        config = scf_framework.load_config(CONFIG, environ=DEPLOYER_ENV)
        again = scf_framework.cli_upload(CONFIG, config["inputs"]["src"], run_hook=False, environ=DEPLOYER_ENV)
    finally:
        for path in made:
            shutil.rmtree(path)
    assert again == uploaded


@pytest.mark.parametrize("case", [c for c in CASES if c.event], ids=lambda c: c.function)
def test_each_http_package_answers_under_python_3_10(
    uploaded: scf_framework.Files, python310: str, tmp_path: Path, case: Case
) -> None:
    code = write_package(uploaded, case.function, tmp_path / "code")
    run = run_package(python310, code, case.env, case.event(), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.report["version"][:2] == [3, 10]
    assert run.report["result"]["statusCode"] == 200, run.report["result"]


def test_the_pull_package_drains_vod_under_python_3_10(
    uploaded: scf_framework.Files, python310: str, tmp_path: Path, start_vod_stack: Callable[..., VodStack]
) -> None:
    # GIVEN an upload waiting in the (emulated) PULL queue
    stack = start_vod_stack(pull=True, long_poll_seconds=0.2)
    committed = stack.upload(sample_video(tmp_path / "v.mp4"), user="erin")
    # WHEN the deployed package runs on its timer, with a 12 s limit less the 11 s reserve
    env = {name: os.environ[name] for name in (*_PULL_ENV, "DATABASE_URL")}
    code = write_package(uploaded, "events_pull", tmp_path / "code")
    context = {"request_id": "timer", "time_limit_in_ms": 17_000}
    run = run_package(
        python310,
        code,
        {**env, "VOD_PULL_RESERVE_SECONDS": "16"},
        load_event("scf_timer"),
        cwd=tmp_path,
        context=context,
    )
    # THEN it recorded and confirmed the event with the SDK from its own package, on 3.10
    assert run.returncode == 0, run.stderr
    assert run.report["version"][:2] == [3, 10]
    assert (run.report["result"]["recorded"], run.report["result"]["confirmed"]) == (1, 1)
    assert run.report["files"]["tencentcloud"].startswith(str(code))
    assert stack.record(committed["fileId"]).user_id == "erin"


_PULL_ENV = (
    "VOD_CONTEXT_KEY",
    "TENCENTCLOUD_SECRET_ID",
    "TENCENTCLOUD_SECRET_KEY",
    "VOD_SUB_APP_ID",
    "VOD_API_ENDPOINT",
)


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_the_callbacks_memory_holds_the_largest_event_it_takes(
    uploaded: scf_framework.Files, python310: str, tmp_path: Path, database: str, request: pytest.FixtureRequest
) -> None:
    """Its peak, the interpreter's included, within three quarters of the function's memorySize (the rest for
    SCF's own runtime): over it, SCF ends every delivery of that event, and VOD gives up on it."""
    url = (
        f"sqlite:///{tmp_path}/vod.sqlite3"
        if database == "sqlite"
        else request.getfixturevalue("postgres_server").create_database()
    )
    code = write_package(uploaded, "callback", tmp_path / "code")
    run = run_package(
        python310,
        code,
        {**CALLBACK_ENV, "DATABASE_URL": url},
        http_event("POST", "/vod-events", body=largest_task_event(CALLBACK_MAX_BODY_BYTES), shape="function_url"),
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    assert run.report["result"]["statusCode"] == 200, run.report["result"]
    inputs = scf_framework.load_config(CONFIG)["inputs"]
    memory = int(inputs["functions"]["callback"].get("memorySize", inputs["memorySize"]))
    assert run.report["peak_kib"] / 1024 <= 0.75 * memory, (run.report["peak_kib"] // 1024, memory)


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_events_pulls_memory_holds_a_whole_batch_of_the_largest_events(
    uploaded: scf_framework.Files,
    python310: str,
    tmp_path: Path,
    start_vod_stack: Callable[..., VodStack],
    database: str,
    request: pytest.FixtureRequest,
) -> None:
    """A PullEvents answer holds up to 16 events, none limited to what a PUSH body may be: as many as the callback's
    largest event (a snapshot every second). Over its memorySize, SCF ends the run before it confirms any, and
    every next run is handed the same batch: the queue would be stuck until VOD drops them (days)."""
    stack = start_vod_stack(pull=True, long_poll_seconds=0.2)
    largest = {k: v for k, v in largest_task_event(CALLBACK_MAX_BODY_BYTES).items() if k not in ("T", "Sign")}
    task = largest["ProcedureStateChangeEvent"]
    files = [f"f-{n}" for n in range(MAX_EVENTS_PER_PULL)]
    batch = [{**largest, "ProcedureStateChangeEvent": {**task, "FileId": f, "TaskId": f"t-{f}"}} for f in files]
    stack._stack.emulator.state.queue_events([(PULL, event) for event in batch], time.time())
    url = (
        f"sqlite:///{tmp_path}/vod.sqlite3"
        if database == "sqlite"
        else request.getfixturevalue("postgres_server").create_database()
    )
    env = {**{name: os.environ[name] for name in _PULL_ENV}, "DATABASE_URL": url}
    code = write_package(uploaded, "events_pull", tmp_path / "code")
    context = {"request_id": "timer", "time_limit_in_ms": 60_000}
    run = run_package(python310, code, env, load_event("scf_timer"), cwd=tmp_path, context=context)
    assert run.returncode == 0, run.stderr[-2000:]
    store = open_store(url)
    assert [len(store.tasks(f)) for f in files] == [1] * len(files)
    store.close()
    inputs = scf_framework.load_config(CONFIG)["inputs"]
    memory = int(inputs["functions"]["events_pull"].get("memorySize", inputs["memorySize"]))
    assert run.report["peak_kib"] / 1024 <= 0.75 * memory, (run.report["peak_kib"] // 1024, memory)


@pytest.mark.parametrize(
    ("database", "shape"),
    [
        ("sqlite", snapshots_event),
        ("sqlite", outputs_event),
        pytest.param("postgres", snapshots_event, marks=pytest.mark.postgres),
    ],
    ids=["sqlite", "sqlite-outputs", "postgres"],
)
def test_the_uploads_functions_memory_holds_a_page_of_the_largest_tasks(
    uploaded: scf_framework.Files,
    python310: str,
    tmp_path: Path,
    database: str,
    shape: Callable[..., dict[str, Any]],
    request: pytest.FixtureRequest,
) -> None:
    """A page of uploads (and one more, read to know there is a next page), each with the largest task the
    callback takes (a snapshot every second: one output of many URLs; or, forged, many outputs), and the newest
    with several: the list and that upload are answered within three quarters of the function's memorySize, as
    the callback's largest event is (what a page shows is cut anyway)."""
    url = (
        f"sqlite:///{tmp_path}/vod.sqlite3"
        if database == "sqlite"
        else request.getfixturevalue("postgres_server").create_database()
    )
    store = open_store(url)
    largest = largest_task_event(CALLBACK_MAX_BODY_BYTES, shape=shape)
    tasks = [(f"f-{n}", "t-0") for n in range(DEFAULT_LIMIT + 1)] + [("f-0", f"t-{n}") for n in range(1, 4)]
    for at, (file_id, task_id) in enumerate(tasks, start=1):
        upload = vod_event("NewFileUpload", FileId=file_id, SourceContext=seal("ann", "r", CONTEXT_KEY))
        ingest_event(store, upload, received_at=100 - at, keys=KEYS)  # f-0 the newest
        body = largest["ProcedureStateChangeEvent"]
        event = {**largest, "ProcedureStateChangeEvent": {**body, "FileId": file_id, "TaskId": task_id}}
        ingest_event(store, event, received_at=100 + at, keys=KEYS)
    store.close()
    code = write_package(uploaded, "uploads", tmp_path / "code")
    inputs = scf_framework.load_config(CONFIG)["inputs"]
    memory = int(inputs["functions"]["uploads"].get("memorySize", inputs["memorySize"]))
    headers = {"Authorization": f"Bearer {dev_token('ann', JWT_SECRET)}"}
    env = {"AUTH_JWT_SECRET": JWT_SECRET, "DATABASE_URL": url}
    for path, tasks_shown in [("/uploads", [4] + [1] * (DEFAULT_LIMIT - 1)), ("/uploads/f-0", [4])]:
        run = run_package(python310, code, env, http_event("GET", path, headers=headers), cwd=tmp_path)
        assert run.returncode == 0, run.stderr
        assert run.report["result"]["statusCode"] == 200, run.report["result"]
        answer = json.loads(run.report["result"]["body"])
        shown = answer["uploads"] if path == "/uploads" else [answer]
        assert [len(u["tasks"]) for u in shown] == tasks_shown
        assert path != "/uploads" or answer["nextCursor"]  # the one more was read, and is on the next page
        if shape is snapshots_event:
            assert all(o["urlCount"] > MAX_OUTPUT_URLS for u in shown for t in u["tasks"] for o in t["outputs"])
        else:
            assert all(len(t["outputs"]) == MAX_OUTPUTS < t["outputCount"] for u in shown for t in u["tasks"])
        assert run.report["peak_kib"] / 1024 <= 0.75 * memory, (path, run.report["peak_kib"] // 1024, memory)


def write_package(uploaded: scf_framework.Files, function: str, target: Path) -> Path:
    for name, data in scf_framework.function_package(uploaded, functions_config()[function]["src"]).items():
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        (target / name).write_bytes(data)
    return target


# --- triggers ------------------------------------------------------------------------------------------


def test_function_urls_for_the_http_functions_and_a_timer_for_pull() -> None:
    triggers = scf_framework.load_config(CONFIG)["inputs"]["triggers"]
    functions = functions_config()
    assert all(t["function"] in functions for t in triggers)  # multi-scf: "Function x not in deploy list"
    urls = {t["function"]: t["parameters"] for t in triggers if t["type"] == "http"}
    assert sorted(urls) == ["callback", "sign", "upload_page", "uploads"]
    for parameters in urls.values():
        # The toolkit's HttpTrigger defaults EnableExtranet to false: an unreachable URL unless set.
        assert parameters["netConfig"] == {"enableIntranet": False, "enableExtranet": True}
        assert parameters["authType"] == "NONE"  # the functions authenticate each request themselves
    [timer] = [t for t in triggers if t["type"] == "timer"]
    assert timer["function"] == "events_pull" and timer["parameters"]["enable"] is True
    assert triggers[0] is timer  # made first: the toolkit stops at a trigger it fails on (a function URL, once)
    assert not [t for t in triggers if t["type"] == "apigw"]  # see deploy/api-gateway/serverless.yml


@pytest.mark.parametrize(
    ("function", "triggers"),
    [
        ("sign", ["http"]),
        ("callback", ["http"]),
        ("events_pull", ["timer"]),
        ("uploads", ["http"]),
        ("upload_page", ["http"]),
    ],
)
def test_each_function_deploys_alone_with_its_own_triggers(
    uploaded: scf_framework.Files, bundles: Path, function: str, triggers: list[str]
) -> None:
    config = scf_framework.load_config(CONFIG)["inputs"]
    kept = scf_framework.triggers_deployed_with(config["triggers"], function)
    assert [t["type"] for t in kept] == triggers
    package = scf_framework.function_package(uploaded, config["functions"][function]["src"])
    assert package == scf_framework.directory_files(bundles / function)


def test_the_api_gateway_routes_to_the_deployed_functions_with_integrated_responses() -> None:
    api = scf_framework.load_config(API_CONFIG, stage="prod")["inputs"]
    functions = scf_framework.load_config(CONFIG, stage="prod")["inputs"]["functions"]
    names = {key: function["name"] for key, function in functions.items()}
    routes = {(e["method"], e["path"]): e["function"] for e in api["endpoints"]}
    wanted = {
        ("ANY", "/signature"): "sign",  # POST, and the CORS preflight (OPTIONS)
        ("POST", "/vod-events"): "callback",
        ("ANY", "/uploads"): "uploads",  # GET, HEAD and the preflight
        ("ANY", "/uploads/{fileId}"): "uploads",
    }
    assert {route: f["functionName"] for route, f in routes.items()} == {r: names[f] for r, f in wanted.items()}
    assert names["sign"] == "vod-upload-prod-sign"
    # Without integrated responses the gateway would answer 200 whatever the function returns.
    assert all(f["isIntegratedResponse"] is True for f in routes.values())
    assert api["protocols"] == ["https"]
    for endpoint in api["endpoints"]:  # the gateway waits longer than the function may run
        assert endpoint["serviceTimeout"] > functions_config()[wanted[(endpoint["method"], endpoint["path"])]].get(
            "timeout", 5
        )
    # A method outside the component's input rules stops `scf deploy` before anything is created.
    assert {e["method"] for e in api["endpoints"]} <= scf_framework.API_GATEWAY_METHODS


@pytest.mark.parametrize(
    ("function", "longest"),
    [
        # A stuck store answers 503 (connecting, then a statement: DATABASE_TIMEOUT, then one second more) before
        # SCF ends the call without an answer; for uploads after the longest ?wait, counted from the start.
        ("callback", 2 * DEFAULT_DATABASE_TIMEOUT + 1),
        ("uploads", MAX_WAIT_SECONDS + 2 * DEFAULT_DATABASE_TIMEOUT + 1),
    ],
)
def test_a_function_outlasts_its_longest_store_wait(function: str, longest: int) -> None:
    assert functions_config()[function]["timeout"] > longest


# --- settings ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("function", FUNCTIONS)
def test_every_setting_a_function_reads_is_deployed_and_documented(
    bundles: Path, python310: str, tmp_path: Path, function: str
) -> None:
    deployed = set(deployed_variables(function))
    read: set[str] = set()
    for variant in VARIANTS[function]:
        run = run_package(python310, bundles / function, {**SCF_ENV, **variant}, cwd=tmp_path)
        assert run.returncode == 0, run.stderr
        read |= set(run.report["reads"])
    assert read - deployed - set(NOT_DEPLOYED) == set()
    assert deployed - read == set()  # nothing passed that the function ignores
    documented = documented_settings()
    assert (read | deployed) - documented - {"TENCENTCLOUD_RUNENV", "SCF_RUNTIME", "SCF_FUNCTIONNAME"} == set()


@pytest.mark.parametrize("config", [CONFIG, API_CONFIG], ids=lambda p: str(p.relative_to(ROOT)))
def test_every_deploy_time_variable_is_documented(config: Path) -> None:
    assert scf_framework.env_sources(config) - documented_settings() == set()


@pytest.mark.parametrize("function", ["callback", "events_pull"])
@pytest.mark.parametrize(
    ("database_url", "said"),
    [(None, "got nothing"), ("", "got nothing"), ("sqlite:///tmp/vod.sqlite3", "got a sqlite: URL")],
)
def test_inside_scf_the_store_must_be_postgresql(
    bundles: Path, python310: str, tmp_path: Path, function: str, database_url: str | None, said: str
) -> None:
    env = {**SCF_ENV, **VARIANTS[function][0]}
    env.pop("DATABASE_URL")
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    run = run_package(python310, bundles / function, env, cwd=tmp_path)
    assert run.returncode != 0
    assert "ConfigError" in run.stderr
    assert re.search(rf"DATABASE_URL: must be a postgresql:// URL inside SCF .*{said}", run.stderr), run.stderr
    # Locally (no SCF variables) the same setting is fine: SQLite is the default for development.
    local = {k: v for k, v in env.items() if k not in SCF_ENV}
    assert run_package(python310, bundles / function, local, cwd=tmp_path).returncode == 0


# The deployer's names that differ from the function's setting: one setting, a different value per function.
RENAMED = {
    ("sign", "HTTP_MAX_BODY_BYTES"): "SIGN_HTTP_MAX_BODY_BYTES",
    ("callback", "HTTP_MAX_BODY_BYTES"): "CALLBACK_HTTP_MAX_BODY_BYTES",
    ("uploads", "HTTP_MAX_BODY_BYTES"): "UPLOADS_HTTP_MAX_BODY_BYTES",
    ("uploads", "DATABASE_URL"): "UPLOADS_DATABASE_URL",  # a read-only role
    # VOD's API for these two: a pair of their own (or a role), never sign's upload-only one
    **{
        (f, f"VOD_SECRET_{part}"): f"VOD_API_SECRET_{part}"
        for f in ("callback", "events_pull")
        for part in ("ID", "KEY")
    },
}


@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_function_gets_the_deployers_values_and_nothing_else(function: str) -> None:
    environ = {name: f"value of {name}" for name in DEPLOYER_ENV}
    variables = scf_framework.function_variables(scf_framework.load_config(CONFIG, environ=environ)["inputs"], function)
    # Each setting from the deployer's variable of its own name, but for the renamed ones.
    assert variables == {key: environ[RENAMED.get((function, key), key)] for key in deployed_variables(function)}
    assert len(variables) >= 4  # none lost on the way (an `environment:` map would be replaced by nothing)


def test_the_model_deploys_empty_values_and_lists_as_the_toolkit_does(tmp_path: Path) -> None:
    # An unset ${env:…} is undefined (JSON drops it); an empty YAML value is null (JSON keeps it); an empty
    # `environments:` is null, and multi-scf builds no Variables from it (the common list is not used either)
    path = tmp_path / "serverless.yml"
    path.write_text(
        "inputs:\n  environments: [{key: COMMON, value: c}]\n  functions:\n"
        "    f: {environments: [{key: A, value: '${env:UNSET}'}, {key: B, value: }, {key: C, value: 0}]}\n"
        "    g: {environments: }\n    h: {}\n"
    )
    inputs = scf_framework.load_config(path)["inputs"]
    assert scf_framework.function_variables(inputs, "f") == {"A": "undefined", "B": "null", "C": "0"}
    assert scf_framework.function_variables(inputs, "g") == {}
    assert scf_framework.function_variables(inputs, "h") == {"COMMON": "c"}


def test_the_upload_only_signing_key_reaches_only_the_sign_function() -> None:
    # A function with an execution role would use any key pair it is given first (shared.config): given sign's
    # upload-only pair, PullEvents and DescribeMediaInfos would be refused and the role never used.
    signing_key = {deployed_variables("sign")[name] for name in ("VOD_SECRET_ID", "VOD_SECRET_KEY")}
    for name in functions_config():
        if name != "sign":
            assert not signing_key & set(deployed_variables(name).values()), name


def test_an_unset_setting_would_deploy_as_undefined_so_the_hook_refuses_it() -> None:
    environ = {**DEPLOYER_ENV}
    del environ["VOD_PROCEDURE"]
    deployed = scf_framework.function_variables(scf_framework.load_config(CONFIG, environ=environ)["inputs"], "sign")
    assert deployed["VOD_PROCEDURE"] == "undefined"  # what multi-scf and the toolkit make of it

    hook = scf_framework.load_config(CONFIG)["inputs"]["src"]["hook"]
    env = {**user_env(), **environ}
    run = subprocess.run(hook, shell=True, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    assert run.returncode != 0
    assert re.search(r"1 setting\(s\) .* not set .*\n  VOD_PROCEDURE\n", run.stderr), run.stderr
    assert "export VOD_PROCEDURE=" in run.stderr
    assert not re.search(r"scripts/build", run.stdout)  # refused before building anything


@pytest.mark.parametrize(
    ("config", "refused"),
    [
        # the common list, which a function without its own gets
        ("inputs:\n  environments: [{key: A, value: '${env:UNSET_A}'}]\n  functions: {f: {}}\n", "UNSET_A"),
        ("inputs:\n  functions: {f: {environment: {variables: {A: x}}}}\n", "in functions.f, which multi-scf ignores"),
        ("inputs:\n  functions: {f: {environments: [{key: A, value: '${env:PATH}'}]}}\n", None),
    ],
    ids=["common-list", "environment-map", "all-set"],
)
def test_the_deploy_check_reads_the_config_as_multi_scf_does(tmp_path: Path, config: str, refused: str | None) -> None:
    path = tmp_path / "serverless.yml"
    path.write_text(config)
    check = [sys.executable, str(ROOT / "scripts" / "check-deploy-env"), str(path)]  # the venv: PyYAML
    run = subprocess.run(check, env=user_env(), capture_output=True, text=True, check=False)
    assert run.returncode == (0 if refused is None else 1), run.stderr
    assert refused is None or refused in run.stderr


def test_the_deploy_check_offers_a_role_only_to_functions_that_call_vods_api_with_one() -> None:
    # sign signs with its own key pair: a role given to it (or to all, in the common inputs) would not do
    config = yaml.safe_load(CONFIG.read_text())
    config["inputs"]["role"] = "${env:APP_ROLE}"
    pairs = ("VOD_SECRET_ID", "VOD_SECRET_KEY", "VOD_API_SECRET_ID", "VOD_API_SECRET_KEY")
    environ = {**DEPLOYER_ENV, "APP_ROLE": "", **dict.fromkeys(pairs, "")}
    problems, _ = load_script("check-deploy-env").startup_problems(config, environ)
    said = {line.split(":")[0]: line for line in problems if "needs a key pair" in line}
    assert said["sign"] == "sign: VOD's API needs a key pair: set VOD_SECRET_ID and VOD_SECRET_KEY"
    assert said["events_pull"].endswith("or EVENTS_PULL_ROLE (an execution role)")  # its own role, over the common


_RSA_PUBLIC_KEY = (
    rsa.generate_private_key(public_exponent=65537, key_size=2048)
    .public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode()
)


@pytest.mark.parametrize(
    ("changed", "refused"),
    [
        ({}, []),
        (  # all of them empty, as the hook's own hint for unset ones would leave them
            {name: "" for name in REQUIRED_SETTINGS},
            [
                "sign: AUTH_JWT_SECRET: set exactly one of AUTH_JWT_SECRET, AUTH_JWT_PUBLIC_KEY, AUTH_JWT_JWKS_URL",
                "callback: VOD_CALLBACK_SIGN_KEY: is required",
                "uploads: DATABASE_URL (from UPLOADS_DATABASE_URL): must be a postgresql:// URL inside SCF",
                "events_pull: VOD's API needs a key pair: set VOD_API_SECRET_ID and VOD_API_SECRET_KEY, or "
                "EVENTS_PULL_ROLE (an execution role)",
            ],
        ),
        ({"DATABASE_URL": "sqlite:///tmp/vod.sqlite3"}, ["callback: DATABASE_URL: must be a postgresql:// URL"]),
        ({"VOD_API_SECRET_ID": "", "VOD_API_SECRET_KEY": "", "EVENTS_PULL_ROLE": "vod-events-pull"}, []),  # a role
        (  # the sign function's pair is set, but not these functions' own
            {"VOD_CALLBACK_CONFIRM": "fetch", "VOD_API_SECRET_ID": "", "VOD_API_SECRET_KEY": ""},
            ["callback: VOD's API needs a key pair: set VOD_API_SECRET_ID and VOD_API_SECRET_KEY, or CALLBACK_ROLE"],
        ),
        ({"UPLOAD_PAGE_SIGNATURE_URL": "ftp://x"}, ["upload_page: UPLOAD_PAGE_SIGNATURE_URL: must be a path"]),
        (  # the key each function checks at its cold start
            {"AUTH_JWT_SECRET": "", "AUTH_JWT_PUBLIC_KEY": UNREADABLE_PUBLIC_KEY, "AUTH_JWT_ALGORITHMS": "RS256"},
            ["sign: AUTH_JWT_PUBLIC_KEY: is not a readable PEM", "uploads: AUTH_JWT_PUBLIC_KEY: is not a readable"],
        ),
        (  # a good key, but a bundle without what verifies it (this machine has it)
            {"AUTH_JWT_SECRET": "", "AUTH_JWT_PUBLIC_KEY": _RSA_PUBLIC_KEY},
            ["sign: AUTH_JWT_ALGORITHMS: RS256 needs the `cryptography` package in the bundle (add it to functions/"],
        ),
        # What `make serve` prints (the emulator, a local database): inside SCF nothing listens on loopback
        (
            {"VOD_API_ENDPOINT": "http://127.0.0.1:9000", "VOD_CALLBACK_CONFIRM": "fetch"},
            [
                "callback: VOD_API_ENDPOINT names this machine (127.0.0.1:9000)",
                "events_pull: VOD_API_ENDPOINT names this machine",
            ],
        ),
        (
            {"VOD_API_ENDPOINT": "localhost:9000", "VOD_CALLBACK_CONFIRM": "fetch"},  # a bare host: https
            ["callback: VOD_API_ENDPOINT names this machine (localhost:9000)", "events_pull: VOD_API_ENDPOINT names"],
        ),
        (
            {"UPLOAD_PAGE_SIGNATURE_URL": "http://app:pw-hunter2@localhost:8080/sign", "UPLOAD_PAGE_STATUS_URL": "/up"},
            ["upload_page: UPLOAD_PAGE_SIGNATURE_URL names this machine (localhost:8080): each visit"],
        ),
        (
            {
                "AUTH_JWT_SECRET": "",
                "AUTH_JWT_JWKS_URL": "http://127.0.0.1:8080/jwks",
                "AUTH_JWT_ISSUER": "https://id.x/",
            },
            ["sign: AUTH_JWT_JWKS_URL names this machine (127.0.0.1:8080)", "uploads: AUTH_JWT_JWKS_URL names this"],
        ),
        (
            {"DATABASE_URL": "postgresql://vod_events@localhost:5432/vod"},
            ["callback: DATABASE_URL names a server on this machine", "events_pull: DATABASE_URL names a server on"],
        ),
        (
            {"UPLOADS_DATABASE_URL": "postgresql://vod_reader@/vod?host=/var/run/postgresql"},
            ["uploads: DATABASE_URL names a server on this machine (a host on loopback, or a Unix socket)"],
        ),
        (  # exported from a Latin-1 shell: named, as any other setting's bytes (the loopback check took a traceback)
            {"UPLOADS_DATABASE_URL": "postgresql://vod_reader:\udce9t\udce9@db.internal/vod"},
            ["uploads: DATABASE_URL (from UPLOADS_DATABASE_URL): is not valid UTF-8 text"],
        ),
    ],
    ids=[
        "complete",
        "required-empty",
        "sqlite",
        "pull-by-role",
        "fetch-without-keys",
        "page-url",
        "unreadable-key",
        "no-cryptography",
        "emulator",
        "emulator-bare-host",
        "page-on-loopback",
        "issuer-on-loopback",
        "local-database",
        "unix-socket",
        "not-utf8",
    ],
)
def test_the_deploy_check_refuses_what_a_cold_start_would(changed: dict[str, str], refused: list[str]) -> None:
    # As each function will read its deployed settings inside SCF: refused before anything is built or uploaded
    env = {**user_env(), **DEPLOYER_ENV, **changed}
    check = [sys.executable, str(ROOT / "scripts" / "check-deploy-env"), str(CONFIG)]
    run = subprocess.run(check, env=env, capture_output=True, text=True, check=False)
    assert run.returncode == (1 if refused else 0), run.stderr
    assert all(f"\n  {line}" in run.stderr for line in refused), run.stderr
    assert run.stdout == ""  # the functions' log lines are not for the deployer's terminal
    assert not set(REQUIRED_SETTINGS.values()) & set(re.findall(r"[\w:/@.-]+", run.stderr))  # no value quoted back
    assert "pw-hunter2" not in run.stderr  # nor a URL's password


@pytest.mark.parametrize(
    ("value", "timeout", "refused"),
    [
        ("'5'", "60", None),
        ("'0'", "60", "callback: DATABASE_TIMEOUT: must be in 1..60 (got 0)"),  # as written: checked as deployed
        ("'5'", "'60'", None),  # the toolkit takes a quoted timeout too (+"60")
        ("'5'", "'x'", "callback's timeout is not a whole number of seconds (got 'x')"),
        # A wait as long as the timeout is SCF's to end (no 503 of ours): refused; one second less is the store's
        ("'2'", "5", "callback may wait 5 s on its store (DATABASE_TIMEOUT=2), its timeout is 5 s"),
        ("'2'", "6", None),
        # What YAML 1.2 (the CLI's js-yaml) makes of these is not what YAML 1.1 (this check's) makes, nor what was
        # meant: 1_000 stays "1_000", an empty value is sent as "null"
        ("1_000", "60", "functions.callback: DATABASE_TIMEOUT: 1000"),
        ("0", "60", "functions.callback: DATABASE_TIMEOUT: 0"),
        ("false", "60", "functions.callback: DATABASE_TIMEOUT: False"),
        ("", "60", "functions.callback: DATABASE_TIMEOUT: None"),
    ],
)
def test_the_deploy_check_reads_values_as_they_are_deployed(
    tmp_path: Path, value: str, timeout: str, refused: str | None
) -> None:
    path = tmp_path / "serverless.yml"
    path.write_text(
        f"inputs:\n  functions:\n    callback:\n      src: ./callback\n      timeout: {timeout}\n      environments:\n"
        + "".join(
            f"        - {{key: {key}, value: '${{env:{key}}}'}}\n"
            for key in ("VOD_CALLBACK_SIGN_KEY", "VOD_CONTEXT_KEY", "DATABASE_URL")
        )
        + f"        - {{key: DATABASE_TIMEOUT, value: {value}}}\n"
    )
    check = [sys.executable, str(ROOT / "scripts" / "check-deploy-env"), str(path)]
    run = subprocess.run(check, env={**user_env(), **DEPLOYER_ENV}, capture_output=True, text=True, check=False)
    assert run.returncode == (0 if refused is None else 1), run.stderr
    assert refused is None or f"\n  {refused}" in run.stderr, run.stderr
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize(("where", "refused"), [("inputs", False), ("function", False), ("nowhere", True)])
def test_the_deploy_check_counts_a_role_set_for_all_functions(tmp_path: Path, where: str, refused: bool) -> None:
    # An execution role instead of a key pair for events_pull: its own, or the one common to every function
    role = "  role: vod-pull\n" if where == "inputs" else ""
    own = "      role: vod-pull\n" if where == "function" else ""
    keys = ("VOD_CONTEXT_KEY", "DATABASE_URL")
    path = tmp_path / "serverless.yml"
    path.write_text(
        f"inputs:\n{role}  functions:\n    events_pull:\n      src: ./events_pull\n      timeout: 60\n{own}"
        "      environments:\n" + "".join(f"        - {{key: {k}, value: '${{env:{k}}}'}}\n" for k in keys)
    )
    check = [sys.executable, str(ROOT / "scripts" / "check-deploy-env"), str(path)]
    run = subprocess.run(check, env={**user_env(), **DEPLOYER_ENV}, capture_output=True, text=True, check=False)
    assert run.returncode == int(refused), run.stderr
    assert ("events_pull: VOD's API needs a key pair: set VOD_SECRET_ID and VOD_SECRET_KEY" in run.stderr) is refused


def test_the_deploy_check_tells_what_the_functions_would_warn_of() -> None:
    env = {**user_env(), **DEPLOYER_ENV, "CORS_ALLOW_ORIGINS": "http://app.example.com"}
    check = [sys.executable, str(ROOT / "scripts" / "check-deploy-env"), str(CONFIG)]
    run = subprocess.run(check, env=env, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    warned = "config.cleartext_url: CORS_ALLOW_ORIGINS: http://app.example.com is not https://"
    assert f"\n  sign: {warned}\n  uploads: {warned}" in run.stderr and run.stdout == ""


@pytest.mark.parametrize(
    ("env", "refused"),
    [
        ({"AUTH_MODE": "none"}, "sign: AUTH_MODE: none is for local development only"),
        ({"VOD_SECRET_ID": "k" * 32, "VOD_SECRET_KEY": "AKIDswapped0000000000000000000000000"}, "sign: VOD_SECRET_ID:"),
        ({"VOD_CALLBACK_SIGN_KEY": "Key123"}, "callback: VOD_CALLBACK_SIGN_KEY: must be at least 16 characters"),
        # the callback's SignKey under a name sign reads too: sign's check, which it comes first to, masks it
        ({"LOG_LEVEL": REQUIRED_SETTINGS["VOD_CALLBACK_SIGN_KEY"]}, "sign: LOG_LEVEL: must be one of"),
    ],
    ids=["auth off", "keys swapped", "short SignKey", "a secret under another name"],
)
def test_the_deploy_check_refuses_what_is_unsafe_only_once_deployed(env: dict[str, str], refused: str) -> None:
    check = [sys.executable, str(ROOT / "scripts" / "check-deploy-env"), str(CONFIG)]
    run = subprocess.run(check, env={**user_env(), **DEPLOYER_ENV, **env}, capture_output=True, text=True, check=False)
    assert run.returncode == 1 and refused in run.stderr, run.stderr
    assert "0000000000000000000" not in run.stderr  # a value quoted is not the SecretKey
    assert REQUIRED_SETTINGS["VOD_CALLBACK_SIGN_KEY"] not in run.stderr


_TIMED = (
    "inputs:\n  functions:\n"
    "    callback: {timeout: 10, environments: [{key: DATABASE_TIMEOUT, value: '${env:DATABASE_TIMEOUT}'}]}\n"
    "    uploads: {timeout: 30, environments: [{key: DATABASE_TIMEOUT, value: '${env:DATABASE_TIMEOUT}'},"
    " {key: UPLOADS_MAX_WAIT_SECONDS, value: '${env:UPLOADS_MAX_WAIT_SECONDS}'}]}\n"
    "    events_pull: {timeout: 60, environments: [{key: DATABASE_TIMEOUT, value: '${env:DATABASE_TIMEOUT}'},"
    " {key: VOD_PULL_RESERVE_SECONDS, value: '${env:VOD_PULL_RESERVE_SECONDS}'}]}\n"
)


@pytest.mark.parametrize(
    ("env", "refused"),
    [
        ({}, None),  # the defaults: 7 s and 27 s of store waits; 20 s of events_pull's 60 kept back
        ({"DATABASE_TIMEOUT": "4"}, None),  # 9 s of 10; 20 + 9 = 29 of 30
        ({"DATABASE_TIMEOUT": "5"}, "callback may wait 11 s on its store (DATABASE_TIMEOUT=5), its timeout is 10 s"),
        ({"DATABASE_TIMEOUT": " 5\n"}, "callback may wait 11 s on its store (DATABASE_TIMEOUT=5)"),  # read as 5
        (
            {"DATABASE_TIMEOUT": "3", "UPLOADS_MAX_WAIT_SECONDS": "25"},
            "uploads may wait 32 s on its store (DATABASE_TIMEOUT=3, UPLOADS_MAX_WAIT_SECONDS=25)",
        ),
        ({"VOD_PULL_RESERVE_SECONDS": "55"}, None),  # the one PullEvents long poll still fits
        (
            {"VOD_PULL_RESERVE_SECONDS": "56"},
            "events_pull would never pull: VOD_PULL_RESERVE_SECONDS=56 leaves less than PullEvents' 5 s",
        ),
        ({"VOD_PULL_RESERVE_SECONDS": "600"}, "events_pull would never pull: VOD_PULL_RESERVE_SECONDS=600"),
        # not whole numbers (a digit to str.isdigit() only, too): the functions refuse them at their cold start
        ({"DATABASE_TIMEOUT": "x"}, None),
        ({"DATABASE_TIMEOUT": "\u00b2"}, None),
        # more digits than Python reads: more than SCF takes of all a function's settings, too
        ({"DATABASE_TIMEOUT": "9" * 4301}, "callback: 4317 bytes (the largest: DATABASE_TIMEOUT 4317)"),
    ],
)
def test_the_deploy_check_refuses_waits_the_timeouts_leave_no_room_for(
    tmp_path: Path, env: dict[str, str], refused: str | None
) -> None:
    path = tmp_path / "serverless.yml"
    path.write_text(_TIMED)
    check = [sys.executable, str(ROOT / "scripts" / "check-deploy-env"), str(path)]
    unset = dict.fromkeys(("DATABASE_TIMEOUT", "UPLOADS_MAX_WAIT_SECONDS", "VOD_PULL_RESERVE_SECONDS"), "")  # defaults
    run = subprocess.run(check, env={**user_env(), **unset, **env}, capture_output=True, text=True, check=False)
    assert run.returncode == (0 if refused is None else 1) and "Traceback" not in run.stderr, run.stderr
    assert refused is None or refused in run.stderr


@pytest.mark.parametrize(
    ("vpc", "subnet", "refused"),
    [("", "", False), ("vpc-1a2b3c4d", "subnet-1a2b3c4d", False), ("vpc-1a2b3c4d", "", True), ("", "subnet-1a", True)],
    ids=["none", "both", "vpc-alone", "subnet-alone"],
)
def test_the_deploy_check_refuses_a_vpc_without_its_subnet(vpc: str, subnet: str, refused: bool) -> None:
    check = [sys.executable, str(ROOT / "scripts" / "check-deploy-env"), str(CONFIG)]
    env = {**user_env(), **DEPLOYER_ENV, "DEPLOY_VPC_ID": vpc, "DEPLOY_SUBNET_ID": subnet}
    run = subprocess.run(check, env=env, capture_output=True, text=True, check=False)
    assert (run.returncode, "SCF takes a VPC only with its subnet" in run.stderr) == (int(refused), refused), run.stderr
    # each function in a VPC said
    assert all(
        (f"\n  {name}: vpcId (${{env:DEPLOY_VPC_ID}})" in run.stderr) is refused for name in ("callback", "uploads")
    )


def _origins(length: int) -> str:
    """Origins a page may be served from, listed in exactly `length` characters."""
    listed: list[str] = []
    while length > 83:  # room for one more of 27 characters, its comma, and the last of 21 to 83
        listed.append(f"https://app{len(listed):04}.example.com")
        length -= 28
    return ",".join([*listed, f"https://{'b' * (length - 20)}.example.com"])


@pytest.mark.parametrize("over", [0, 1], ids=["at-the-limit", "one-byte-over"])
def test_the_deploy_check_refuses_more_environment_than_scf_takes(over: int) -> None:
    # SCF takes 4 KB of a function's variables: a long list of origins (or an RSA key) passes every other check
    inputs = yaml.safe_load(CONFIG.read_text())["inputs"]
    deployed = load_script("check-deploy-env")._settings(inputs["functions"]["sign"], inputs, DEPLOYER_ENV)
    room = 4096 - sum(len(name) + len(value) for name, value in deployed.items() if name != "CORS_ALLOW_ORIGINS")
    origins = _origins(room - len("CORS_ALLOW_ORIGINS") + over)
    check = [sys.executable, str(ROOT / "scripts" / "check-deploy-env"), str(CONFIG)]
    env = {**user_env(), **DEPLOYER_ENV, "CORS_ALLOW_ORIGINS": origins}
    run = subprocess.run(check, env=env, capture_output=True, text=True, check=False)
    refused = "\n  sign: 4097 bytes (the largest: CORS_ALLOW_ORIGINS "
    assert (run.returncode, refused in run.stderr) == ((1, True) if over else (0, False)), run.stderr


def test_the_deploy_config_passes_references_never_values() -> None:
    """Settings (secrets among them) come from the deployer's environment; none is written in the config."""
    for function in FUNCTIONS:
        for value in deployed_variables(function).values():
            assert re.fullmatch(r"\$\{env:[A-Z0-9_]+\}", value), value
