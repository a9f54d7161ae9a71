"""The COS object API of the emulator, as a WSGI app that the real `cos-python-sdk-v5` can talk to.

Requests arrive as the SDK sends them in IP/Port mode (qcloud_cos/cos_client.py): `http://IP:Port/<key>` with
`Host: <bucket>.cos.<region>.myqcloud.com`. Each must be signed with a temporary credential from the
`CredentialRegistry` for the Host's bucket, and may only touch that credential's keys. Every refusal is
a `CosError`, turned into COS's XML error shape in exactly one place (`_error_response`).
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import secrets
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, BinaryIO
from urllib.parse import parse_qsl, quote

from werkzeug.exceptions import ClientDisconnected
from werkzeug.http import http_date, parse_range_header
from werkzeug.wrappers import Request, Response

from . import cos_auth
from .cos_auth import CosRequestVerifier, SignedRequest
from .credentials import CredentialRegistry, TempCredential
from .objects import (
    DEFAULT_CONTENT_TYPE,
    BadDigestError,
    EntityTooLargeError,
    EntityTooSmallError,
    InvalidPartError,
    InvalidPartNumberError,
    InvalidPartOrderError,
    KeyTooLongError,
    NoSuchUploadError,
    ObjectInfo,
    ObjectSealedError,
    ObjectStore,
    StoreError,
    UploadInfo,
    is_valid_bucket,
)
from .wsgi import is_decimal

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

logger = logging.getLogger("vodemu.cos")

DEFAULT_MAX_OBJECT_SIZE = 5 * 1024**3  # COS's limit for one PUT (and one part)
# COS's limit for an object made of parts: "48.82 TB (i.e., 50,000 GB)", 10,000 parts of 5 GB
# (https://www.tencentcloud.com/document/product/436/14113).
DEFAULT_MAX_ASSEMBLED_SIZE = 10_000 * DEFAULT_MAX_OBJECT_SIZE
# A CompleteMultipartUpload listing 10000 parts is about 1 MB of XML; anything bigger is not one.
MAX_COMPLETE_BODY = 4 * 1024 * 1024
# A refused request's body is read and dropped (up to this much) so the client, which sends the whole
# body before reading the answer, gets the XML error instead of a connection reset.
DEFAULT_DRAIN_LIMIT = 64 * 1024 * 1024
MAX_LIST_ENTRIES = 1000
_OWNER_ID = "qcs::cam::uin/100000000001:uin/100000000001"
_DRAIN_CHUNK = 1024 * 1024


class CosError(Exception):
    """A refusal, with the COS error code and HTTP status a real bucket would answer."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


_AUTH_ERRORS: dict[type[cos_auth.CosAuthError], tuple[str, int]] = {
    cos_auth.MalformedAuthorizationError: ("AccessDenied", 403),
    cos_auth.UnknownAccessKeyError: ("InvalidAccessKeyId", 403),
    cos_auth.SecurityTokenMissingError: ("AccessDenied", 403),
    cos_auth.SecurityTokenMismatchError: ("AccessDenied", 403),
    cos_auth.SignatureMismatchError: ("SignatureDoesNotMatch", 403),
    cos_auth.SignatureExpiredError: ("AccessDenied", 403),
    cos_auth.SignatureNotYetValidError: ("RequestTimeTooSkewed", 403),
    cos_auth.CredentialExpiredError: ("AccessDenied", 403),
    cos_auth.CredentialRevokedError: ("AccessDenied", 403),
}

_STORE_ERRORS: dict[type[StoreError], tuple[str, int]] = {
    KeyTooLongError: ("KeyTooLong", 400),
    NoSuchUploadError: ("NoSuchUpload", 404),
    InvalidPartNumberError: ("InvalidArgument", 400),
    InvalidPartError: ("InvalidPart", 400),
    InvalidPartOrderError: ("InvalidPartOrder", 400),
    EntityTooSmallError: ("EntityTooSmall", 400),
    EntityTooLargeError: ("EntityTooLarge", 400),
    BadDigestError: ("BadDigest", 400),
    ObjectSealedError: ("AccessDenied", 403),
}


def _access_denied(message: str = "Access Denied.") -> CosError:
    return CosError("AccessDenied", message, 403)


def _invalid_argument(message: str) -> CosError:
    return CosError("InvalidArgument", message, 400)


def _method_not_allowed() -> CosError:
    return CosError("MethodNotAllowed", "The specified method is not allowed against this resource.", 405)


def _no_such_key() -> CosError:
    return CosError("NoSuchKey", "The specified key does not exist.", 404)


def _malformed_xml(message: str) -> CosError:
    return CosError("MalformedXML", message, 400)


@dataclass(frozen=True)
class CosApiSettings:
    max_object_size: int = DEFAULT_MAX_OBJECT_SIZE
    max_skew_seconds: int = cos_auth.DEFAULT_MAX_SKEW_SECONDS
    drain_limit: int = DEFAULT_DRAIN_LIMIT
    max_assembled_size: int = DEFAULT_MAX_ASSEMBLED_SIZE


@dataclass(frozen=True)
class _Call:
    """One authenticated request, parsed at the edge."""

    request: Request
    host: str  # Host without port
    bucket: str
    key: str  # "" for bucket-level requests
    query: dict[str, str]  # first value of each parameter
    credential: TempCredential


_Handler = Callable[[_Call], Response]


def make_cos_app(
    store: ObjectStore,
    credentials: CredentialRegistry,
    *,
    clock: Callable[[], float],
    max_object_size: int = DEFAULT_MAX_OBJECT_SIZE,
    max_skew_seconds: int = cos_auth.DEFAULT_MAX_SKEW_SECONDS,
    drain_limit: int = DEFAULT_DRAIN_LIMIT,
    max_assembled_size: int = DEFAULT_MAX_ASSEMBLED_SIZE,
) -> WSGIApplication:
    """The COS object API over `store`, open to temporary credentials from `credentials`.

    `clock` decides signature windows and credential expiry; `max_object_size` caps a PUT body and a part,
    `max_assembled_size` an object made of parts (EntityTooLarge); `max_skew_seconds` is the tolerated signer
    clock error; `drain_limit` is how much of a refused body is read to keep the connection answerable.
    """
    settings = CosApiSettings(max_object_size, max_skew_seconds, drain_limit, max_assembled_size)
    verifier = CosRequestVerifier(credentials, clock, max_skew_seconds=max_skew_seconds)
    return _CosApp(store, verifier, settings)


# CORS as VOD configures its upload buckets for the browser SDK (跨域访问, https://cloud.tencent.com/document/
# product/436/13318): any origin, the methods of a (multipart) upload, and the headers the SDK must read —
# without an exposed ETag, vod-js-sdk-v6's multipart upload fails ("get ETag error").
_CORS_METHODS = "GET, PUT, POST, DELETE, HEAD"
_CORS_EXPOSE = "ETag, x-cos-request-id, Content-Length, Date"


def _preflight(request: Request) -> Response:
    response = Response(status=200)
    response.headers["Access-Control-Allow-Methods"] = _CORS_METHODS
    asked = request.headers.get("Access-Control-Request-Headers")
    response.headers["Access-Control-Allow-Headers"] = asked or "*"
    response.headers["Access-Control-Max-Age"] = "600"
    return response


def _allow_origin(request: Request, response: Response) -> None:
    """On every answer, errors included: a browser hides an answer without these from the page."""
    response.headers["Access-Control-Allow-Origin"] = request.headers.get("Origin") or "*"
    response.headers["Access-Control-Expose-Headers"] = _CORS_EXPOSE
    response.vary.add("Origin")


class _CosApp:
    def __init__(self, store: ObjectStore, verifier: CosRequestVerifier, settings: CosApiSettings) -> None:
        self._store = store
        self._verifier = verifier
        self._settings = settings

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        request_id = base64.b64encode(secrets.token_bytes(24)).decode("ascii")
        # A browser's preflight carries no credentials: it is answered before any authentication.
        response = _preflight(request) if request.method == "OPTIONS" else self._respond(request, request_id)
        self._discard_unread_body(request, response)
        response.headers["x-cos-request-id"] = request_id
        _allow_origin(request, response)
        logger.debug("COS %s %s -> %s", request.method, _path(request), response.status_code)
        return response(environ, start_response)

    def _respond(self, request: Request, request_id: str) -> Response:
        """The one place where refusals and crashes become COS error documents."""
        try:
            return self._handle(request)
        except CosError as exc:
            return _error_response(exc, request, request_id)
        except ClientDisconnected:
            error = CosError("IncompleteBody", "The request body ended before its declared length.", 400)
            return _error_response(error, request, request_id)
        except Exception:
            logger.exception("COS %s %s failed; request id %s", request.method, _path(request), request_id)
            error = CosError("InternalError", "We encountered an internal error. Please try again.", 500)
            return _error_response(error, request, request_id)

    def _handle(self, request: Request) -> Response:
        host = _host_without_port(request)
        bucket = _bucket_from_host(host)
        credential = self._authenticate(request)
        if credential.bucket != bucket:
            raise _access_denied("The credential is not valid for this bucket.")
        region = _region_from_host(host)
        if region is not None and credential.region is not None and region != credential.region:
            # Buckets are regional: another region's endpoint has no such bucket.
            raise CosError("NoSuchBucket", "The specified bucket does not exist.", 404)
        path = _path(request)
        query = _query(request)
        handler, resource_key = self._route(request.method, path[1:], query)
        if not credential.allows(resource_key):
            raise _access_denied("The credential does not grant access to this key.")
        call = _Call(request, host, bucket, path[1:], query, credential)
        try:
            return handler(call)
        except StoreError as exc:
            code, status = _STORE_ERRORS.get(type(exc), ("InvalidRequest", 400))
            raise CosError(code, str(exc), status) from exc

    def _authenticate(self, request: Request) -> TempCredential:
        signed = SignedRequest(
            method=request.method,
            path=_path(request),
            params=_query_pairs(request),
            headers=[(name, _raw_header(value)) for name, value in request.headers.items()],
        )
        try:
            return self._verifier.verify(signed, request.headers.get("Authorization"))
        except cos_auth.CosAuthError as exc:
            code, status = _AUTH_ERRORS.get(type(exc), ("AccessDenied", 403))
            raise CosError(code, str(exc), status) from exc

    def _route(self, method: str, key: str, query: dict[str, str]) -> tuple[_Handler, str]:
        """The handler for a request and the object key it touches (the key a credential must allow)."""
        if not key:
            if method == "GET" and "uploads" in query:
                return self._list_multipart_uploads, query.get("prefix", "")
            raise _method_not_allowed()
        multipart = "uploadId" in query or (method == "PUT" and "partNumber" in query)
        handlers: dict[tuple[str, bool], _Handler] = {
            ("PUT", False): self._put_object,
            ("PUT", True): self._upload_part,
            ("GET", False): self._get_object,
            ("GET", True): self._list_parts,
            ("HEAD", False): self._head_object,
            ("POST", True): self._complete_multipart_upload,
            ("DELETE", True): self._abort_multipart_upload,
        }
        if method == "POST" and "uploads" in query:
            return self._initiate_multipart_upload, key
        handler = handlers.get((method, multipart))
        if handler is None:
            raise _method_not_allowed()
        return handler, key

    def _discard_unread_body(self, request: Request, response: Response) -> None:
        """Read what is left of the body so the connection can carry the next request; else close it."""
        discarded = 0
        try:
            stream = request.stream
            while discarded <= self._settings.drain_limit:
                chunk = stream.read(_DRAIN_CHUNK)
                if not chunk:
                    return
                discarded += len(chunk)
        except Exception:  # best effort: a broken body only means the connection cannot be reused
            logger.debug("COS %s %s: unread body could not be drained", request.method, _path(request))
        response.headers["Connection"] = "close"

    # ---- objects -------------------------------------------------------------------------------

    def _put_object(self, call: _Call) -> Response:
        if "x-cos-copy-source" in call.request.headers:
            raise CosError("NotImplemented", "PUT Object - Copy is not supported by the emulator.", 501)
        self._check_declared_length(call.request)
        info = self._store.put_object(
            call.bucket,
            call.key,
            call.request.stream,
            max_size=self._settings.max_object_size,
            content_type=call.request.headers.get("Content-Type") or DEFAULT_CONTENT_TYPE,
            expected_md5=_content_md5(call.request),
        )
        return _empty_response(200, [("ETag", info.etag), *_crc64_header(info.crc64)])

    def _head_object(self, call: _Call) -> Response:
        info = self._store.stat(call.bucket, call.key)
        if info is None:
            raise _no_such_key()
        return Response(status=200, headers=_object_headers(info, info.size))

    def _get_object(self, call: _Call) -> Response:
        opened = self._store.open_read(call.bucket, call.key)
        if opened is None:
            raise _no_such_key()
        info, file = opened
        try:
            requested = _requested_range(call.request, info.size)
        except CosError:
            file.close()
            raise
        start, stop = requested or (0, info.size)
        headers = _object_headers(info, stop - start)
        status = 200
        if requested is not None:
            status = 206
            headers.append(("Content-Range", f"bytes {start}-{stop - 1}/{info.size}"))
        file.seek(start)
        body = _FileSlice(file, stop - start)
        return Response(body, status=status, headers=headers, direct_passthrough=True)

    # ---- multipart uploads ---------------------------------------------------------------------

    def _initiate_multipart_upload(self, call: _Call) -> Response:
        content_type = call.request.headers.get("Content-Type") or DEFAULT_CONTENT_TYPE
        upload = self._store.initiate_upload(call.bucket, call.key, content_type=content_type)
        root = ET.Element("InitiateMultipartUploadResult")
        _add(root, "Bucket", call.bucket)
        _add(root, "Key", call.key)
        _add(root, "UploadId", upload.upload_id)
        return _xml_response(root)

    def _upload_part(self, call: _Call) -> Response:
        part_number = _int_param(call.query, "partNumber", default=None)
        upload_id = call.query.get("uploadId", "")
        self._check_declared_length(call.request)
        part = self._store.upload_part(
            call.bucket,
            call.key,
            upload_id,
            part_number,
            call.request.stream,
            max_size=self._settings.max_object_size,
            size_hint=call.request.content_length,
            expected_md5=_content_md5(call.request),
        )
        return _empty_response(200, [("ETag", part.etag), *_crc64_header(part.crc64)])

    def _list_parts(self, call: _Call) -> Response:
        marker = _int_param(call.query, "part-number-marker", default=0)
        max_parts = _page_size(call.query, "max-parts")
        stored = self._store.list_parts(call.bucket, call.key, call.query["uploadId"])
        parts = [part for part in stored if part.part_number > marker]
        page, truncated = parts[:max_parts], len(parts) > max_parts
        encode = _encoder(call.query)
        root = ET.Element("ListPartsResult")
        _add(root, "Bucket", call.bucket)
        _add_encoding_type(root, call.query)
        _add(root, "Key", encode(call.key))
        _add(root, "UploadId", call.query["uploadId"])
        _add_identity(root, "Initiator")
        _add_identity(root, "Owner")
        _add(root, "PartNumberMarker", str(marker))
        for part in page:
            element = ET.SubElement(root, "Part")
            _add(element, "PartNumber", str(part.part_number))
            _add(element, "LastModified", _iso8601(part.last_modified))
            _add(element, "ETag", part.etag)
            _add(element, "Size", str(part.size))
        _add(root, "NextPartNumberMarker", str(page[-1].part_number if page else marker))
        _add(root, "StorageClass", "STANDARD")
        _add(root, "MaxParts", str(max_parts))
        # The SDK stops paging only on the literal string "false".
        _add(root, "IsTruncated", "true" if truncated else "false")
        return _xml_response(root)

    def _list_multipart_uploads(self, call: _Call) -> Response:
        prefix = call.query.get("prefix", "")
        key_marker = call.query.get("key-marker", "")
        upload_id_marker = call.query.get("upload-id-marker", "")
        max_uploads = _page_size(call.query, "max-uploads")
        # A prefix also matches longer keys; list only the ones this credential may see.
        visible = [u for u in self._store.list_uploads(call.bucket, prefix) if call.credential.allows(u.key)]
        remaining = _after_markers(visible, key_marker, upload_id_marker)
        page, truncated = remaining[:max_uploads], len(remaining) > max_uploads
        encode = _encoder(call.query)
        root = ET.Element("ListMultipartUploadsResult")
        _add(root, "Bucket", call.bucket)
        _add_encoding_type(root, call.query)
        _add(root, "KeyMarker", encode(key_marker))
        _add(root, "UploadIdMarker", upload_id_marker)
        _add(root, "NextKeyMarker", encode(page[-1].key) if truncated else "")
        _add(root, "NextUploadIdMarker", page[-1].upload_id if truncated else "")
        _add(root, "MaxUploads", str(max_uploads))
        _add(root, "IsTruncated", "true" if truncated else "false")
        _add(root, "Prefix", encode(prefix))
        for upload in page:
            _add_upload(root, upload, encode)
        return _xml_response(root)

    def _complete_multipart_upload(self, call: _Call) -> Response:
        parts = _parse_complete_body(_read_limited(call.request, MAX_COMPLETE_BODY))
        info = self._store.complete_upload(
            call.bucket, call.key, call.query["uploadId"], parts, max_size=self._settings.max_assembled_size
        )
        root = ET.Element("CompleteMultipartUploadResult")
        _add(root, "Location", f"{call.host}/{call.key}")
        _add(root, "Bucket", call.bucket)
        _add(root, "Key", call.key)
        _add(root, "ETag", info.etag)
        return _xml_response(root, headers=_crc64_header(info.crc64))

    def _abort_multipart_upload(self, call: _Call) -> Response:
        self._store.abort_upload(call.bucket, call.key, call.query["uploadId"])
        return _empty_response(204, [])

    def _check_declared_length(self, request: Request) -> None:
        # Refuse before streaming anything; chunked bodies are capped while they stream instead.
        if request.content_length is not None and request.content_length > self._settings.max_object_size:
            raise CosError("EntityTooLarge", "Your proposed upload exceeds the maximum allowed object size.", 400)


# ---- request parsing ---------------------------------------------------------------------------


def _path(request: Request) -> str:
    """The percent-decoded URL path as signed (werkzeug's `request.path` would merge leading slashes)."""
    raw = request.environ.get("PATH_INFO", "") or "/"
    return str(raw).encode("latin-1").decode("utf-8", "replace")


def _query_pairs(request: Request) -> list[tuple[str, str]]:
    return parse_qsl(request.query_string.decode("utf-8", "replace"), keep_blank_values=True)


def _query(request: Request) -> dict[str, str]:
    query: dict[str, str] = {}
    for name, value in _query_pairs(request):
        query.setdefault(name, value)
    return query


def _raw_header(value: str) -> bytes:
    """WSGI hands header bytes over as latin-1 text; the signature covers the bytes."""
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8")


def _host_without_port(request: Request) -> str:
    host = str(request.environ.get("HTTP_HOST", ""))
    name, sep, port = host.rpartition(":")
    return name if sep and port.isdigit() else host


def _bucket_from_host(host: str) -> str:
    """`<bucket>.cos.<region>.myqcloud.com` (or any `<bucket>.<endpoint>`): the SDK's IP/Port mode."""
    bucket, dot, endpoint = host.partition(".")
    if not dot or not endpoint or not is_valid_bucket(bucket):
        raise CosError("NoSuchBucket", "The specified bucket does not exist.", 404)
    return bucket


_REGIONAL_HOST = re.compile(r"[^.]+\.cos\.([a-z0-9-]+)\.(myqcloud\.com|tencentcos\.cn)")


def _region_from_host(host: str) -> str | None:
    """The region of `<bucket>.cos.<region>.myqcloud.com` (or tencentcos.cn); None for any other endpoint."""
    match = _REGIONAL_HOST.fullmatch(host)
    return match.group(1) if match else None


def _int_param(query: dict[str, str], name: str, *, default: int | None) -> int:
    value = query.get(name)
    if value is None and default is not None:
        return default
    if value is None or not is_decimal(value):
        raise _invalid_argument(f"{name} must be a non-negative integer")
    return int(value)


def _page_size(query: dict[str, str], name: str) -> int:
    # 0 would list nothing yet say there is more: a client paging until IsTruncated is "false" would never end.
    size = _int_param(query, name, default=MAX_LIST_ENTRIES)
    if size == 0:
        raise _invalid_argument(f"{name} must be at least 1")
    return min(size, MAX_LIST_ENTRIES)


def _content_md5(request: Request) -> bytes | None:
    value = request.headers.get("Content-MD5")
    if value is None:
        return None
    try:
        digest = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        digest = b""
    if len(digest) != 16:
        raise CosError("InvalidDigest", "The Content-MD5 you specified is not valid.", 400)
    return digest


def _requested_range(request: Request, size: int) -> tuple[int, int] | None:
    """[start, stop) of a single-range request; None (whole object) if absent, malformed or multi-range."""
    header = request.headers.get("Range")
    if not header:
        return None
    ranges = parse_range_header(header)
    if ranges is None or len(ranges.ranges) != 1:
        return None
    bounds = ranges.range_for_length(size)
    if bounds is None:
        raise CosError("InvalidRange", "The requested range is not satisfiable.", 416)
    return bounds


def _read_limited(request: Request, limit: int) -> bytes:
    chunks = []
    total = 0
    while chunk := request.stream.read(64 * 1024):
        total += len(chunk)
        if total > limit:
            raise _malformed_xml("The XML body is too large.")
        chunks.append(chunk)
    return b"".join(chunks)


def _local_name(tag: str) -> str:
    return tag.rpartition("}")[2]


def _parse_complete_body(body: bytes) -> list[tuple[int, str]]:
    """(PartNumber, ETag) pairs of a CompleteMultipartUpload body.

    Parsed from text, so expat reads exactly the characters checked here whatever encoding the XML
    declaration claims; refusing any DOCTYPE rules out entity definitions (and their expansion).
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _malformed_xml("The XML body is not UTF-8.") from exc
    if "<!DOCTYPE" in text.upper() or "<!ENTITY" in text.upper():
        raise _malformed_xml("DOCTYPE and entity declarations are not allowed.")
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise _malformed_xml("The XML you provided was not well-formed.") from exc
    if _local_name(root.tag) != "CompleteMultipartUpload":
        raise _malformed_xml("The root element must be CompleteMultipartUpload.")
    parts = [_parse_part(element) for element in root]
    if not parts:
        raise _malformed_xml("At least one Part is required.")
    return parts


def _parse_part(element: ET.Element) -> tuple[int, str]:
    if _local_name(element.tag) != "Part":
        raise _malformed_xml(f"Unexpected element {_local_name(element.tag)}.")
    fields = {_local_name(child.tag): (child.text or "").strip() for child in element}
    number, etag = fields.get("PartNumber", ""), fields.get("ETag", "")
    if not is_decimal(number) or not etag:
        raise _malformed_xml("Each Part needs a numeric PartNumber and an ETag.")
    return int(number), etag


def _after_markers(uploads: Sequence[UploadInfo], key_marker: str, upload_id_marker: str) -> list[UploadInfo]:
    """The uploads listed after `key-marker` / `upload-id-marker` (S3 semantics)."""
    if not key_marker:
        return list(uploads)
    if upload_id_marker:
        for index, upload in enumerate(uploads):
            if upload.key == key_marker and upload.upload_id == upload_id_marker:
                return list(uploads[index + 1 :])
    return [upload for upload in uploads if upload.key > key_marker]


# ---- responses ---------------------------------------------------------------------------------


def _encoder(query: dict[str, str]) -> Callable[[str], str]:
    """With `encoding-type=url` keys are percent-encoded (the SDK unquotes them); else sent as is."""
    if query.get("encoding-type") == "url":
        return lambda value: quote(value, safe="/")
    return lambda value: value


def _add(parent: ET.Element, tag: str, text: str) -> ET.Element:
    element = ET.SubElement(parent, tag)
    element.text = text
    return element


def _add_encoding_type(root: ET.Element, query: dict[str, str]) -> None:
    if "encoding-type" in query:
        _add(root, "Encoding-Type", query["encoding-type"])


def _add_identity(parent: ET.Element, tag: str) -> None:
    element = ET.SubElement(parent, tag)
    _add(element, "ID", _OWNER_ID)
    _add(element, "DisplayName", _OWNER_ID)


def _add_upload(root: ET.Element, upload: UploadInfo, encode: Callable[[str], str]) -> None:
    element = ET.SubElement(root, "Upload")
    _add(element, "Key", encode(upload.key))
    _add(element, "UploadId", upload.upload_id)
    _add(element, "StorageClass", "STANDARD")
    _add_identity(element, "Initiator")
    _add_identity(element, "Owner")
    _add(element, "Initiated", _iso8601(upload.initiated))


def _iso8601(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _xml_response(root: ET.Element, status: int = 200, headers: Sequence[tuple[str, str]] = ()) -> Response:
    body = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return Response(body, status=status, headers=[("Content-Type", "application/xml"), *headers])


def _empty_response(status: int, headers: list[tuple[str, str]]) -> Response:
    return Response(b"", status=status, headers=headers, content_type="application/xml")


def _object_headers(info: ObjectInfo, content_length: int) -> list[tuple[str, str]]:
    return [
        ("Content-Type", info.content_type),
        ("Content-Length", str(content_length)),
        ("ETag", info.etag),
        ("Last-Modified", http_date(info.last_modified)),
        ("Accept-Ranges", "bytes"),
        ("x-cos-storage-class", "STANDARD"),
        *_crc64_header(info.crc64),
    ]


def _crc64_header(crc64: int | None) -> list[tuple[str, str]]:
    """COS reports the CRC64 of what it stored, a part, a PUT object or one completed from parts, for clients to
    check against their own ("CRC64 Check", https://www.tencentcloud.com/document/product/436/43320)."""
    return [] if crc64 is None else [("x-cos-hash-crc64ecma", str(crc64))]


def _error_response(error: CosError, request: Request, request_id: str) -> Response:
    if error.status >= 500:
        logger.error("COS %s %s: %s %s", request.method, _path(request), error.code, error.message)
    else:
        logger.info("COS %s %s refused: %s %s", request.method, _path(request), error.code, error.message)
    trace_id = secrets.token_hex(16)
    root = ET.Element("Error")
    _add(root, "Code", error.code)
    _add(root, "Message", error.message)
    _add(root, "Resource", f"{_host_without_port(request)}{_path(request)}")
    _add(root, "RequestId", request_id)
    _add(root, "TraceId", trace_id)
    response = _xml_response(root, error.status)
    response.headers["x-cos-trace-id"] = trace_id
    return response


class _FileSlice:
    """`length` bytes of an open file from its current offset, in large chunks; closes the file."""

    def __init__(self, file: BinaryIO, length: int, chunk_size: int = 1024 * 1024) -> None:
        self._file = file
        self._remaining = length
        self._chunk_size = chunk_size

    def __iter__(self) -> Iterator[bytes]:
        while self._remaining > 0:
            chunk = self._file.read(min(self._chunk_size, self._remaining))
            if not chunk:
                return
            self._remaining -= len(chunk)
            yield chunk

    def close(self) -> None:
        self._file.close()
