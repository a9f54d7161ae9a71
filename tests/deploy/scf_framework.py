"""What the Serverless Cloud Framework does with a serverless.yml, reproduced from the components' source
(no network, no Node.js), so tests can see the packages SCF would really get.

- The CLI (`serverless-cloud-framework`, its `@serverless-cloud-framework/platform-client-china` 2.x,
  src/instance.js): paths in `inputs.src` are resolved against the config's directory; with `src.hook` and
  `src.dist`, the hook runs in `src.src` and `src.dist` is what gets zipped (`preRunSrcHook`); the files are
  fast-glob's `**/*` with `{dot: true, ignore: [".git", ...src.exclude]}` (`getFilesAndMap`).
- multi-scf (`serverless-components/tencent-multi-scf`, src/formatter.ts `uploadFaasCode` + src/zipper.ts):
  for a function with `src`, every zip entry whose name *contains* `src.replace('./', '')` is extracted,
  then the directory `<extract>/<src>` is zipped again as that function's package (empty: an error).
- `${env:NAME}` is replaced by the deployer's environment (src/libs/utils/basic.js `resolveVariables`);
  an unset name becomes `undefined` and the key is dropped on the way to the engine. Other variables
  (`${stage}`, …) are the engine's: here `stage` is substituted like the engine does.
- A function's variables (multi-scf src/formatter.ts `formatFaasInputs`, then tencent-component-toolkit
  src/modules/scf/utils.ts): the function's inputs are the common ones overlaid with its own; an
  `environments` list (`[]` when absent) replaces `environment`, and each value is sent as `String(value)`.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

Files = dict[str, bytes]

# The apigateway component's input rules (serverless-components/tencent-apigateway, serverless.component.yml:
# endpoints[].method `allow`, an error-level rule: the CLI stops the deploy), as CreateApi's RequestConfig.Method.
API_GATEWAY_METHODS = frozenset({"ANY", "GET", "POST", "PUT", "DELETE", "HEAD"})


def load_config(path: Path, *, environ: Mapping[str, str] = {}, stage: str = "dev") -> dict[str, Any]:
    config: dict[str, Any] = resolve(yaml.safe_load(path.read_text()), environ, stage)
    return config


_UNDEFINED = object()  # what the CLI makes of an unset ${env:…} written alone: JSON drops it (a null it keeps)


def resolve(value: Any, environ: Mapping[str, str], stage: str) -> Any:
    if isinstance(value, dict):
        resolved = {k: resolve(v, environ, stage) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not _UNDEFINED}
    if isinstance(value, list):
        return [None if item is _UNDEFINED else item for item in (resolve(v, environ, stage) for v in value)]
    if isinstance(value, str):
        whole = re.fullmatch(r"\$\{env:([\w.-]+)\}", value)
        if whole:
            return environ.get(whole.group(1), _UNDEFINED)
        value = re.sub(r"\$\{env:([\w.-]+)\}", lambda m: environ.get(m.group(1), "undefined"), value)
        return value.replace("${stage}", stage)
    return value


def env_sources(path: Path) -> set[str]:
    """Every NAME of a ${env:NAME} in a config file: what the deployer may set."""
    return set(re.findall(r"\$\{env:([\w.-]+)\}", path.read_text()))


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """micromatch's reading of the simple globs used in `exclude` (*, **, ?), as fast-glob applies them."""
    out = []
    for part in re.split(r"(\*\*/|/\*\*|\*|\?)", pattern):
        out.append({"**/": "(?:.*/)?", "/**": "(?:/.*)?", "*": "[^/]*", "?": "[^/]"}.get(part, re.escape(part)))
    return re.compile("".join(out))


def function_variables(inputs: Mapping[str, Any], key: str) -> dict[str, str]:
    """The environment SCF gives function `key` of resolved `inputs` (what the toolkit sends as Variables)."""
    function = {**inputs, **inputs["functions"][key]}
    # An `environments:` left empty is null: no Variables at all (multi-scf builds them only from a list)
    items = function.get("environments", []) or []
    return {item["key"]: _js_string(item["value"]) if "value" in item else "undefined" for item in items}


def _js_string(value: Any) -> str:
    """JavaScript's String(value) for what YAML can give (an empty value is null)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def cli_upload(config_path: Path, src: Any, *, run_hook: bool = True, environ: Mapping[str, str] = {}) -> Files:
    """The files the CLI zips and uploads for `inputs.src`, as {path in the zip: bytes}; the hook runs with
    the deployer's `environ` added to this process's environment."""
    base = config_path.parent
    if isinstance(src, str):
        root, exclude = (base / src).resolve(), []
    else:
        if src.get("hook") and src.get("dist"):
            if run_hook:
                cwd = (base / src.get("src", ".")).resolve()
                subprocess.run(src["hook"], shell=True, cwd=cwd, check=True, env={**os.environ, **environ})
            root = (base / src["dist"]).resolve()
        else:
            root = (base / src["src"]).resolve()
        exclude = list(src.get("exclude", []))
    ignored = [_glob_regex(p) for p in [".git", *exclude]]

    def skipped(relative: str) -> bool:
        # fast-glob drops an entry matching an ignore pattern, and never enters a directory that matches one.
        parts = PurePosixPath(relative).parts
        return any(rx.fullmatch("/".join(parts[:i])) for rx in ignored for i in range(1, len(parts) + 1))

    files: Files = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if path.is_file() and not skipped(relative):
            files[relative] = path.read_bytes()
    if not files:
        raise ValueError("src is not valide in serverless.yml")  # the CLI's own words
    return files


def function_package(uploaded: Files, function_src: str) -> Files:
    """multi-scf's cut of one function's package out of the uploaded zip."""
    entry_name = function_src.replace("./", "", 1)  # JavaScript's String.replace: the first occurrence only
    extracted = {name: data for name, data in uploaded.items() if entry_name in name}
    prefix = os.path.normpath(function_src) + "/"  # path.join(`${scfPath}/code`, faasConfig.src)
    package = {name[len(prefix) :]: data for name, data in extracted.items() if name.startswith(prefix)}
    if not package:
        raise ValueError(f"指定 src 目录为空: {function_src}")  # zipper.ts: "the src directory is empty"
    return package


def triggers_deployed_with(triggers: list[dict[str, Any]], function: str) -> list[dict[str, Any]]:
    """`scf deploy --inputs function=<key>`: the triggers multi-scf keeps (formatTriggerInputs' filter)."""
    kept = []
    for trigger in triggers:
        if trigger["type"] == "apigw":
            apis = [api for api in trigger["parameters"]["apis"] if api["function"] == function]
            if apis:
                kept.append({**trigger, "parameters": {**trigger["parameters"], "apis": apis}})
        elif trigger["function"] == function:
            kept.append(trigger)
    return kept


def directory_files(root: Path) -> Files:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
