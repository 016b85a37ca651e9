"""HEAD Object without botocore's per-call machinery, for folders of thousands of arrays.

A folder listing needs one HEAD per array (its name and size come from the metadata). Through
boto3 each HEAD costs about 1 ms of client CPU -- parameter validation, endpoint rules, event hooks,
response parsing -- so 2,000 arrays are 2 s of CPU before any server is asked. ``SignedHead``
sends the same request for about a fifth of that: the URL boto3 would use (taken once from a
request boto3 builds and we catch before it is sent, so addressing style, region and endpoint
rules are botocore's), signed by botocore's
own S3 SigV4 signer with the client's credentials (refreshed as boto3 refreshes them), over the
client's own connection pool (its TLS verification, proxies and timeouts).

Only an unambiguous answer is taken: 200 gives an ``ObjectInfo``. Anything else -- 403, 404, 5xx,
a redirect, a connection error -- gives ``None`` and the caller asks boto3 again, so retries,
error translation and messages stay in one place.
"""

from __future__ import annotations

import logging
import re
import secrets
import urllib.parse
from email.utils import parsedate_to_datetime
from typing import Any

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest, AWSResponse
from botocore.utils import percent_encode

from .base import ObjectInfo

log = logging.getLogger(__name__)
_PROBE_KEY = "cottoncandy-probe"
_META = "x-amz-meta-"
_SCOPE = re.compile(r"AWS4-HMAC-SHA256 Credential=[^/]+/\d{8}/([^/]+)/s3/aws4_request")


class _EmptyBody:
    """The raw body of the caught probe's stand-in response."""

    def stream(self, **_: Any) -> Any:
        return iter(())


class SignedHead:
    """HEAD requests for one bucket, built and signed as boto3 would build and sign them."""

    def __init__(self, base_url: str, region: str, credentials: Any, http_session: Any):
        self.base_url = base_url  # ends with "/": the key's escaped form follows
        self.region = region
        self._credentials = credentials
        self._http = http_session

    @classmethod
    def for_client(cls, client: Any, bucket: str) -> SignedHead | None:
        """A ``SignedHead`` using ``client``'s endpoint, credentials and pool; ``None`` if it cannot.

        boto3 builds one HEAD of a probe key, which is caught before it is sent: its URL and its
        signature's scope are the ones every later HEAD must have.
        """
        probe = f"{_PROBE_KEY}-{secrets.token_hex(8)}"
        seen: dict[str, str] = {}

        def catch(request: Any, **_: Any) -> AWSResponse | None:
            if not urllib.parse.urlsplit(request.url).path.endswith("/" + probe):
                return None  # another thread's request: let it go
            seen["url"] = request.url
            value = request.headers.get("Authorization", b"")
            seen["authorization"] = value.decode("latin-1") if isinstance(value, bytes) else str(value)
            return AWSResponse(request.url, 200, {}, _EmptyBody())

        try:
            credentials = client._request_signer._credentials
            http_session = client._endpoint.http_session
            if credentials is None or not hasattr(http_session, "send"):
                return None
            client.meta.events.register_first("before-send.s3.HeadObject", catch)
            try:
                client.head_object(Bucket=bucket, Key=probe)
            finally:
                client.meta.events.unregister("before-send.s3.HeadObject", catch)
        except Exception as exc:  # no credentials, an unusual client: boto3 it is
            log.debug("signed HEAD unavailable for %s: %s", bucket, type(exc).__name__)
            return None
        scope = _SCOPE.match(seen.get("authorization", ""))
        url = urllib.parse.urlsplit(seen.get("url", ""))
        if scope is None or url.query or not url.path.endswith("/" + probe):
            return None  # SigV2, SigV4a, S3 Express or a query string: not what this signer does
        base = urllib.parse.urlunsplit((url.scheme, url.netloc, url.path[: -len(probe)], "", ""))
        return cls(base, scope.group(1), credentials, http_session)

    def url_for(self, key: str) -> str:
        return self.base_url + percent_encode(key, safe="/~")

    def signed_request(self, key: str) -> AWSRequest:
        request = AWSRequest(method="HEAD", url=self.url_for(key))
        S3SigV4Auth(self._credentials, "s3", self.region).add_auth(request)
        return request

    def head(self, key: str) -> ObjectInfo | None:
        """The object's metadata, or ``None`` when the answer is anything but a plain 200."""
        try:
            response = self._http.send(self.signed_request(key).prepare())
        except Exception as exc:
            log.debug("signed HEAD of %s failed (%s); asking boto3", key, type(exc).__name__)
            return None
        if response.status_code != 200:
            return None
        headers = response.headers
        try:
            modified = headers.get("Last-Modified")
            return ObjectInfo(key=key, size=int(headers["Content-Length"]), etag=headers["ETag"],
                              last_modified=parsedate_to_datetime(modified) if modified else None,
                              metadata={name.lower()[len(_META):]: value for name, value in headers.items()
                                        if name.lower().startswith(_META)})
        except (KeyError, ValueError, TypeError):
            return None
