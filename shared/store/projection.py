"""The upload and task records of one file, kept up to date one event at a time.

Each file (and each of its tasks) has a small state that every new event updates in O(1), whatever
number of events the file already has. Every update is commutative: a field's value is the one carried
by the event that ranks highest by a key derived from the events themselves (never by arrival),
sets are unions, times are min/max. So any delivery order of the same set of events gives the same
records: a delete that arrives before its upload still wins, a task event that arrives before its
upload is kept. `fold` is the same updates over a whole set at once (the rebuild path, and the referee).

Whose upload a file is can't be rewritten by a later event: when the upload events of one file disagree
on its identity (the user their sealed sourceContext proves, the sourceContext, the media URL), the
record is a conflict, attributed to nobody, and lists what disagrees. A delete applies to any file,
verified upload or not: it only marks a record deleted (VOD_CALLBACK_CONFIRM=fetch checks it with VOD), unless
VOD listed the file well after it (see DISPROOF_MARGIN).
"""

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Literal, TypedDict

from shared.events import (
    DeletePart,
    FileDeleted,
    MediaProcessResult,
    NewFileUpload,
    ProcedureStateChanged,
    VodEvent,
    plain,
)
from shared.records import Record
from shared.source_context import Attribution, attribute

Status = Literal["pending", "uploaded", "processing", "finished", "failed", "deleted", "conflict", "erased"]
TaskOutcome = Literal["processing", "finished", "failed"]


class TaskResult(Record):
    """One media-processing step of a task (Transcode, SnapshotByTimeOffset, ...)."""

    type: str
    status: str | None = None
    err_code: int | None = None
    message: str | None = None
    urls: tuple[str, ...] = ()  # every output URL, for people and for hooks that just want the files
    output: Mapping[str, Any] | None = None


class TaskRecord(Record):
    file_id: str
    task_id: str
    status: str | None = None  # VOD's word: PROCESSING / FINISH
    outcome: TaskOutcome = "processing"
    err_code: int | None = None
    message: str | None = None
    session_context: str | None = None
    session_id: str | None = None
    results: tuple[TaskResult, ...] = ()
    results_at: float | None = None  # when the first event with results arrived (None: a row from before it)


class DeletedPart(Record):
    """Files of a type (and definition: 0 = all) that DeleteMedia removed, as of the last such delete to arrive."""

    type: str | None = None
    definition: int | None = None
    deleted_at: float | None = None  # None: a row from before it, whose task outputs count as deleted whenever made


class Conflict(Record):
    """Upload events of one file that disagree on an identity fact: the values seen, sorted (the first
    MAX_FACT_VALUES)."""

    field: str
    values: tuple[str | None, ...]


class UploadRecord(Record):
    file_id: str
    status: Status = "pending"  # pending = known from other events, upload event not received yet
    user_id: str | None = None  # from the sourceContext the signature function sealed
    sign_request_id: str | None = None
    attribution: str | None = None  # why user_id is what it is: sealed, not_sealed, bad_seal, conflict, …
    confirmed: bool = False  # the identity facts were read from VOD (DescribeMediaInfos), not an event body
    conflicts: tuple[Conflict, ...] = ()
    name: str | None = None
    media_url: str | None = None
    cover_url: str | None = None
    media_type: str | None = None
    storage_region: str | None = None
    class_id: int | None = None
    source_type: str | None = None
    source_context: str | None = None
    create_time: str | None = None
    procedure_task_id: str | None = None
    review_task_id: str | None = None
    metadata: Mapping[str, Any] | None = None
    uploaded: bool = False
    deleted: bool = False
    deleted_at: float | None = None
    deleted_parts: tuple[DeletedPart, ...] = ()
    first_seen_at: float = 0.0  # when its first upload event was received (before one: its first event)
    last_event_at: float = 0.0
    # How many commits have changed the record: of two copies of one file's record (two hooks of it, run in two
    # instances at once, may end in either order) the higher is the newer. 0: never written by this build.
    revision: int = 0


def _urls(value: object, key: str = "") -> Iterator[str]:
    if isinstance(value, str):
        if key.endswith(("Url", "UrlSet", "UrlList")) and value:
            yield value
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield from _urls(v, str(k))
    elif isinstance(value, list):
        for v in value:
            yield from _urls(v, key)


def task_result(result: MediaProcessResult) -> TaskResult:
    return TaskResult(
        type=result.type,
        status=result.status,
        err_code=result.err_code,
        message=result.message,
        urls=tuple(dict.fromkeys(_urls(result.output))),
        output=result.output,
    )


def _outcome(status: str | None, err_code: int | None, results: tuple[TaskResult, ...]) -> TaskOutcome:
    if status != "FINISH":
        return "processing"
    failed = err_code not in (None, 0) or any(r.status == "FAIL" or r.err_code not in (None, 0) for r in results)
    return "failed" if failed else "finished"


class FoldInput(Record):
    dedupe_key: str
    received_at: float
    event: VodEvent
    attribution: Attribution | None = None  # NewFileUpload: whom its sourceContext proves (at receipt)


# --- state ----------------------------------------------------------------------------------------------
# Plain JSON data (lists, never tuples), so a state read back from the store equals the one written.
# A "winner" is [rank, value]: the value of the event with the highest (or, where said, lowest) rank.

Winner = list[Any]


class FileState(TypedDict):
    form: int  # _STATE_FORM: a state of another form (an older build's) is rebuilt from the file's events
    seen: list[float]  # [first received_at, last received_at]; empty before any event
    uploaded_at: float | None  # the first upload event's received_at: where the upload is listed
    listed: dict[str, Winner]  # upload field -> [dedupe key, value]: the upload event with the largest key
    unlisted: dict[str, Winner]  # the same, of the uploads VOD did not list: used only while there is no other
    uploaded: bool
    facts: dict[str, list[str | None]]  # identity fact -> the values the (not unconfirmed) upload events gave
    first: Winner | None  # [rank, attribution]: the upload event ranked lowest (its dedupe key, see _add_upload)
    confirmed: bool  # every (not unconfirmed) upload event's identity was read from VOD
    from_tasks: dict[str, Winner]  # name/media_url/metadata -> [task rank, value]: the lowest-ranked task event
    deleted: list[float] | None  # [first, last]: when the first and the last whole-file delete came
    listed_at: float | None  # when the last upload event VOD listed (DescribeMediaInfos) came
    deleted_parts: list[dict[str, Any]]  # DeletedPart fields, sorted by type and definition (MAX_DELETED_PARTS)
    outcomes: dict[str, int]  # task outcome -> how many of the file's tasks have it now
    settled: list[Any] | None  # [[received_at, dedupe key], task id, outcome]: the task whose first FINISH came last


TaskState = dict[str, Winner]  # task field -> [task rank, value]: the highest-ranked event carrying it

# What a file's state keeps of the values that only bodies from someone who saw one delivery's Sign (replayed within
# its T) would multiply: the first of a fixed order (the smallest of a union: still the same in any order of the
# events), so that an event's cost stays bounded whatever such bodies came before it. Genuine events give a file
# one value of each fact, and a few deleted parts (DeleteMedia's types by definition).
MAX_FACT_VALUES = 16  # two make a conflict
MAX_DELETED_PARTS = 256
_SHOWN_PART_TYPES = ("OriginalFiles", "TranscodeFiles", "AdaptiveDynamicStreamingFiles")  # parts records show

_UPLOAD_FIELDS = (
    "name",
    "media_url",
    "cover_url",
    "media_type",
    "storage_region",
    "class_id",
    "source_type",
    "source_context",
    "create_time",
    "procedure_task_id",
    "review_task_id",
    "metadata",
)
_IDENTITY = ("user_id", "source_context", "media_url")
_FROM_TASKS = (("name", "file_name"), ("media_url", "file_url"), ("metadata", "metadata"))
_TASK_FIELDS = ("status", "err_code", "message", "session_context", "session_id")


def new_file_state() -> FileState:
    return {
        "form": _STATE_FORM,
        "seen": [],
        "uploaded_at": None,
        "listed": {},
        "unlisted": {},
        "uploaded": False,
        "facts": {},
        "first": None,
        "confirmed": True,
        "from_tasks": {},
        "deleted": None,
        "listed_at": None,
        "deleted_parts": [],
        "outcomes": {},
        "settled": None,
    }


def task_id_for(file_id: str, event: VodEvent) -> str | None:
    """The task of `file_id` whose record `event` updates, if any."""
    if isinstance(event, ProcedureStateChanged) and event.file_id == file_id:
        return event.task_id
    return None


def add(file_id: str, state: FileState, item: FoldInput, task: TaskState | None = None) -> bool:
    """Update `state` (and `task`, the state of the task `task_id_for` names) with one new event that
    names `file_id` (a FileDeleted is not searched for it: that would make a big delete quadratic).
    True when the file's standing needs every task's state: then `settle` with them all (rare: a task's
    first FINISH received after a later one of it, while it stands as the file's last finished)."""
    event, at = item.event, item.received_at
    state["seen"] = [min(state["seen"][0], at), max(state["seen"][1], at)] if state["seen"] else [at, at]
    if isinstance(event, NewFileUpload) and event.file_id == file_id:
        state["uploaded_at"] = at if state["uploaded_at"] is None else min(state["uploaded_at"], at)
        _add_upload(state, item, event)
    elif isinstance(event, ProcedureStateChanged) and event.file_id == file_id:
        if task is None:
            raise ValueError("a task event needs its task's state")
        return _add_task_event(state, task, item, event)
    elif isinstance(event, FileDeleted):
        parts = event.parts_for(file_id)
        if parts:  # only some parts (e.g. transcodes) are gone; the media itself still exists
            _add_deleted_parts(state, parts, at)
        else:
            deleted = state["deleted"]
            state["deleted"] = [at, at] if deleted is None else [min(deleted[0], at), max(deleted[1], at)]
    return False


def _add_deleted_parts(state: FileState, parts: Iterable[DeletePart], at: float) -> None:
    # The last delete of a part counts: a task that made its files again after it (a transcode redone) shows them.
    known = {repr((p["type"], p["definition"])): p for p in state["deleted_parts"]}
    for part in parts:
        key = repr((part.type, part.definition))
        latest = max(at, known[key]["deleted_at"]) if key in known else at
        known[key] = plain(DeletedPart(part.type, part.definition, latest))
    if len(known) > MAX_DELETED_PARTS:  # first the types whose files records show, all of a type (0, None) first
        kept = sorted(
            known, key=lambda k: (known[k]["type"] not in _SHOWN_PART_TYPES, known[k]["definition"] not in (0, None), k)
        )
        known = {k: known[k] for k in kept[:MAX_DELETED_PARTS]}
    state["deleted_parts"] = [known[k] for k in sorted(known)]


def _keep(winners: dict[str, Winner], name: str, rank: Any, value: Any, *, lowest: bool = False) -> None:
    current = winners.get(name)
    if value is not None and (current is None or (rank < current[0] if lowest else rank > current[0])):
        winners[name] = [rank, value]


def _add_upload(state: FileState, item: FoldInput, event: NewFileUpload) -> None:
    key = item.dedupe_key
    # None: stored by a build of schema 1, before attributions: what its sourceContext says with no key to open it
    attribution = item.attribution or attribute(event.source_context, ())
    # An upload VOD did not list when asked (VOD_CALLBACK_CONFIRM=fetch) is only its body's word, which anyone
    # who saw one delivery's Sign can forge: its fields are kept apart, it adds no identity facts and it is the
    # first only when no other upload is ("~" sorts after the hex keys), so it neither names, fills in nor
    # conflicts a file VOD did tell about.
    unconfirmed = attribution.why == "unconfirmed"
    for name in _UPLOAD_FIELDS:
        _keep(state["unlisted" if unconfirmed else "listed"], name, key, getattr(event, name))
    state["uploaded"] = True
    facts = {"user_id": attribution.user_id, "source_context": event.source_context, "media_url": event.media_url}
    for name, value in () if unconfirmed else facts.items():
        seen = state["facts"].setdefault(name, [])
        if value not in seen:
            seen.append(value)
            seen.sort(key=lambda v: (v is None, v or ""))
            del seen[MAX_FACT_VALUES:]
    rank = "~" + key if unconfirmed else key
    if state["first"] is None or rank < state["first"][0]:
        state["first"] = [rank, plain(attribution)]
    state["confirmed"] = state["confirmed"] and (attribution.confirmed or unconfirmed)
    if attribution.confirmed:  # VOD had the file when asked, at about this event's receive time
        listed_at = state["listed_at"]
        state["listed_at"] = item.received_at if listed_at is None else max(listed_at, item.received_at)


# 2: uploads VOD did not list kept apart (before: counted as any other, no form marker). Its keys were renamed
# too (upload → listed, identity → facts): an older build that meets a state of this form then fails (and VOD
# delivers the event again) rather than write into it by its own rules, which this build would take as its own.
# 3: when each deleted part was last deleted, and when each task's results were first heard of.
# 4: the task whose FINISH came last (its outcome is the file's, so a task flow run again after a failure counts);
# when the first upload event came (an upload is listed by it, not by a task event that came before it).
# 5: the task whose *first* FINISH came last, and when each task first finished.
# 6: when the last whole-file delete came too, and when VOD last listed the file (a later listing disproves a delete).
_STATE_FORM = 6
_STATE_KEYS = new_file_state().keys()
_TASK_RANK_LENGTH = 3  # an older build's task ranks were [FINISH?, dedupe key]


def state_current(state: FileState, *tasks: TaskState) -> bool:
    """Whether these states are of this build's form, task ranks included: an older build's (written before an
    upgrade, or by one still running during a rolling deploy) would not compare with ours; they are rebuilt."""
    winners = [*state["from_tasks"].values(), *(w for task in tasks for w in task.values())]
    # Its keys too: a few builds of form 6 kept the whole-file deletes as `deletes`, a list, before `deleted`.
    return (
        state.get("form") == _STATE_FORM
        and state.keys() == _STATE_KEYS
        and all(len(rank) == _TASK_RANK_LENGTH for rank, _ in winners)
    )


def _add_task_event(state: FileState, task: TaskState, item: FoldInput, event: ProcedureStateChanged) -> bool:
    # FINISH over PROCESSING, so a late PROCESSING can't undo a FINISH; among PROCESSING events (one per step
    # with TasksNotifyMode Change) the furthest on, by steps ended; then the dedupe key.
    ended = sum(r.status in ("SUCCESS", "FAIL") for r in event.results)
    rank = [int(event.status == "FINISH"), ended, item.dedupe_key]  # _TASK_RANK_LENGTH long
    for name, source in _FROM_TASKS:
        _keep(state["from_tasks"], name, rank, getattr(event, source) or None, lowest=True)
    before = _task_outcome(task) if task else None  # None: the task's first event
    _keep(task, "task_id", rank, event.task_id)  # never None: every event leaves its task's state non-empty
    for name in _TASK_FIELDS:
        _keep(task, name, rank, getattr(event, name))
    results = plain([task_result(r) for r in event.results])
    _keep(task, "results", rank, results or None)
    if results:  # when the task's outputs were first heard of (a later report of the task makes none again);
        # ranked by arrival, lowest first, in a rank as long as every task winner's
        _keep(task, "results_at", [item.received_at, 0, item.dedupe_key], item.received_at, lowest=True)
    after = _task_outcome(task)
    if before != after:
        outcomes = state["outcomes"]
        if before is not None:
            outcomes[before] -= 1
            if not outcomes[before]:
                del outcomes[before]  # so the state's text, too, is the same whatever the order
        outcomes[after] = outcomes.get(after, 0) + 1
    return _settle_with(state, task, item, event, after)


def _settle_with(
    state: FileState, task: TaskState, item: FoldInput, event: ProcedureStateChanged, outcome: TaskOutcome
) -> bool:
    # The task that finished last decides how the file stands (processing aside): a failed task flow run again
    # (ProcessMedia) and finished is finished. Each task counts from its first FINISH: a later report of an
    # older task (a body replayed with a seen Sign, its content VOD's in fetch mode) does not make it the last.
    # That task's later events still update the outcome it left.
    if event.status == "FINISH":
        rank = [item.received_at, 0, item.dedupe_key]  # as long as every task winner's rank
        _keep(task, "first_finish", rank, [item.received_at, item.dedupe_key], lowest=True)
    first_finish, settled = _value(task, "first_finish"), state["settled"]
    if first_finish is None:
        return False
    if settled is None or first_finish > settled[0]:
        state["settled"] = [first_finish, event.task_id, outcome]
    elif settled[1] == event.task_id:
        if first_finish < settled[0]:  # it finished earlier than was known: another task may have finished since
            return True
        settled[2] = outcome
    return False


def settle(state: FileState, tasks: Mapping[str, TaskState]) -> None:
    """The file's standing from all its tasks' states: the task whose first FINISH came last, as it ended."""
    finished = [
        [task["first_finish"][1], task_id, _task_outcome(task)]
        for task_id, task in tasks.items()
        if "first_finish" in task
    ]
    state["settled"] = max(finished) if finished else None


def results_from_plain(results: Iterable[Mapping[str, Any]]) -> tuple[TaskResult, ...]:
    return tuple(TaskResult(**{**r, "urls": tuple(r["urls"])}) for r in results)


def _results(task: TaskState) -> tuple[TaskResult, ...]:
    return results_from_plain(_value(task, "results", []))


def _value(winners: Mapping[str, Winner], name: str, default: Any = None) -> Any:
    winner = winners.get(name)
    return default if winner is None else winner[1]


def _task_outcome(task: TaskState) -> TaskOutcome:
    return _outcome(_value(task, "status"), _value(task, "err_code"), _results(task))


# --- records ------------------------------------------------------------------------------------------


def task_record(file_id: str, task_id: str, task: TaskState) -> TaskRecord:
    return TaskRecord(
        file_id,
        task_id,
        **{name: _value(task, name) for name in _TASK_FIELDS},
        outcome=_task_outcome(task),
        results=_results(task),
        results_at=_value(task, "results_at"),
    )


def upload_record(file_id: str, state: FileState) -> UploadRecord:
    listed = bool(state["facts"])  # facts: those of the listed uploads
    values = {name: _value(state["listed"] if listed else state["unlisted"], name) for name in _UPLOAD_FIELDS}
    for name, _ in _FROM_TASKS:  # name, URL and metadata from the task flow, where no listed upload gave them:
        # an upload VOD did not list is only its body's word, below a task event's
        if not values[name] or not listed:
            values[name] = _value(state["from_tasks"], name) or values[name]
    seen = state["seen"] or [0.0, 0.0]
    deleted_at = _deleted_at(state)
    upload = UploadRecord(
        file_id,
        uploaded=state["uploaded"],
        deleted=deleted_at is not None,
        deleted_at=deleted_at,
        deleted_parts=tuple(DeletedPart(**p) for p in state["deleted_parts"]),
        # Listed by its first upload event: the one that makes it someone's (a task event received before it
        # would list it below uploads made since). Only ever earlier once listed: pages after a cursor miss none.
        first_seen_at=seen[0] if state["uploaded_at"] is None else state["uploaded_at"],
        last_event_at=seen[1],
        **values,
        **_identity(state),
    )
    return upload._replace(status=_status(upload, state))


# VOD never gives a FileId again, nor lists a deleted file: a whole-file delete that came this long (seconds) before
# an upload event VOD listed when asked (VOD_CALLBACK_CONFIRM=fetch) did not happen. Such a delete is forged (a
# replayed Sign, with a FileId VOD had not given out yet, so VOD answered that it does not have it): it must not mark
# deleted the upload that later gets that FileId. The margin covers what else can put a genuine delete before a
# listing: the time from VOD's answer to the event's receive time (a function's run), clocks of other instances, and
# VOD's API answering a moment late.
DISPROOF_MARGIN = 300.0


def _deleted_at(state: FileState) -> float | None:
    """When the file was deleted whole: its first delete; where a listing by VOD disproves that one, its last, unless
    disproved too. (Two numbers, not every delete: a file's state stays as small, however many deletes name it.)"""
    if state["deleted"] is None:
        return None
    first, last = state["deleted"]
    listed_at = state["listed_at"]
    since = float("-inf") if listed_at is None else listed_at - DISPROOF_MARGIN
    return first if first >= since else last if last >= since else None


def _identity(state: FileState) -> dict[str, Any]:
    """Who and what the file is, from all its upload events at once (so arrival order cannot matter)."""
    if state["first"] is None:
        return {}
    facts = state["facts"]  # empty when every upload event is unconfirmed
    conflicts = tuple(Conflict(name, tuple(facts[name])) for name in _IDENTITY if len(facts.get(name, ())) > 1)
    if conflicts:
        return {
            "user_id": None,
            "sign_request_id": None,
            "attribution": "conflict",
            "conflicts": conflicts,
            "confirmed": state["confirmed"],
        }
    first = Attribution(**state["first"][1])
    return {
        "user_id": first.user_id,
        "sign_request_id": first.request_id,
        "attribution": first.why,
        "confirmed": state["confirmed"] and first.why != "unconfirmed",
    }


def _status(upload: UploadRecord, state: FileState) -> Status:
    if upload.deleted:
        return "deleted"
    if upload.conflicts:
        return "conflict"
    if state["outcomes"].get("processing"):
        return "processing"
    if state["settled"] is not None:
        outcome: TaskOutcome = state["settled"][2]
        return outcome
    return "uploaded" if upload.uploaded else "pending"


def fold(file_id: str, events: Iterable[FoldInput]) -> tuple[FileState, dict[str, TaskState]]:
    """The states of `file_id` and its tasks after `events` (all that name it, in any order)."""
    state, tasks = new_file_state(), dict[str, TaskState]()
    unsettled = False
    for item in events:
        task_id = task_id_for(file_id, item.event)
        unsettled |= add(file_id, state, item, None if task_id is None else tasks.setdefault(task_id, {}))
    if unsettled:
        settle(state, tasks)
    return state, tasks
