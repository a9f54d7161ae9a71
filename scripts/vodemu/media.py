"""`GET|HEAD /vod-media/<bucket>/<key>`: the emulator's stand-in for VOD's playback domain.

Serves committed media and covers only (an object uploaded but not committed is not a VOD file yet),
with ETag/Last-Modified conditionals and byte ranges, as players and download tools expect.
"""

from __future__ import annotations

import mimetypes
from urllib.parse import quote

from werkzeug.exceptions import RequestedRangeNotSatisfiable
from werkzeug.wrappers import Request, Response
from werkzeug.wsgi import wrap_file

from vodemu.objects import ObjectStore, normalize_etag
from vodemu.state import EmulatorState
from vodemu.wsgi import WSGIApplication, guarded, json_response

PREFIX = "/vod-media/"


def media_path(bucket: str, key: str) -> str:
    return PREFIX + quote(bucket) + "/" + quote(key)


def _not_found() -> Response:
    return json_response({"code": 404, "message": "no such media file"}, 404, {"Access-Control-Allow-Origin": "*"})


class MediaRoute:
    def __init__(self, store: ObjectStore, state: EmulatorState) -> None:
        self._store = store
        self._state = state

    def handle(self, request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            return json_response({"code": 405, "message": "GET or HEAD only"}, 405, {"Allow": "GET, HEAD"})
        bucket, _, key = request.path[len(PREFIX) :].partition("/")  # request.path is decoded already
        if not key or not self._state.is_published(bucket, key):
            return _not_found()
        opened = self._store.open_read(bucket, key)
        if opened is None:
            return _not_found()
        info, file = opened
        mimetype = mimetypes.guess_type(key)[0] or info.content_type
        response = Response(wrap_file(request.environ, file), mimetype=mimetype, direct_passthrough=True)
        response.content_length = info.size
        response.set_etag(normalize_etag(info.etag))
        response.last_modified = info.last_modified  # type: ignore[assignment]
        response.headers["Access-Control-Allow-Origin"] = "*"
        try:
            return response.make_conditional(request, accept_ranges=True, complete_length=info.size)
        except RequestedRangeNotSatisfiable:
            file.close()
            answer = Response(status=416)
            answer.headers["Content-Range"] = f"bytes */{info.size}"
            return answer


def _crash() -> Response:
    return json_response({"code": 500, "message": "internal error"}, 500)


def make_media_app(store: ObjectStore, state: EmulatorState) -> WSGIApplication:
    return guarded(MediaRoute(store, state).handle, _crash, "media")
