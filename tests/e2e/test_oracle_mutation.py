"""The emulator is an independent oracle: break how shared/ signs, in a scratch copy of the project, and
the emulator-backed end-to-end flow fails (ARCHITECTURE.md, "The oracle"). A checker that shared code
with what it checks would pass the broken copy too."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.checkout import scratch_copy

FLOW = "tests/e2e/test_upload_flow.py::test_push_flow_records_the_upload_for_the_signed_in_user"
SIGNING = "shared/signing.py"

# (what is broken, the line as written, the line as broken): one byte or one token each.
MUTANTS = [
    ("nothing (the control: the copy itself passes)", None, None),
    ("the order of HMAC and signed text", "mac(rest) + start + rest", "start + rest + mac(rest)"),
    ("the HMAC's hash", '"sha1", start)', '"sha256", start)'),
    ("the parameter separator of the express lane", 'join(f"&{slot}"', 'join(f";{slot}"'),
    (
        "the parameter separator of the general path",
        '"&".join(_pair(wire, value) for wire, value in _present(params))',
        '";".join(_pair(wire, value) for wire, value in _present(params))',
    ),
]


@pytest.mark.parametrize(("broken", "written", "mutated"), MUTANTS, ids=[m[0].split(" (")[0] for m in MUTANTS])
def test_a_signing_bug_in_shared_is_caught_by_the_emulator(
    tmp_path: Path, broken: str, written: str | None, mutated: str | None
) -> None:
    copy = scratch_copy(tmp_path / "project")
    if written is not None and mutated is not None:
        source = (copy / SIGNING).read_text()
        assert source.count(written) == 1, f"the mutant no longer applies: {written!r} (update MUTANTS)"
        (copy / SIGNING).write_text(source.replace(written, mutated))
    # The copy's own pytest configuration puts the copy first on sys.path: its shared/ is the one imported.
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "--tb=short", "-p", "no:cacheprovider", "-x", FLOW],
        cwd=copy,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = run.stdout + run.stderr
    if written is None:
        assert run.returncode == 0, output
        return
    assert run.returncode == 1, output  # failed (not an error of the harness: 1 is "tests failed")
    # ...and failed where it should: the emulator refused a signature as malformed (10004) or as not matching its
    # HMAC (10008), its own codes (vodemu.upload_api.Code): Apply's, or (a bug in the sign function's express lane,
    # which a token's second request takes) Commit's.
    assert re.search(r"VOD refused (ApplyUploadUGC|CommitUploadUGC): 100(04|08) signature: ", output), output
