#!/usr/bin/env python3
"""openapi-core as an independent oracle for rxray's OpenAPI checks.

Usage: openapi-oracle.py SPEC EXCHANGES.json [--bench N]
Reads exchanges (method, target, request_headers, request_body, status, response_headers,
response_body) and prints, as JSON, one list per exchange of the rxray finding kinds that
openapi-core's errors map to. With --bench N, validates the exchanges N times over and prints
{"exchanges": n, "seconds": s} instead.

Mapping: PathNotFound/ServerNotFound -> undocumented_path, OperationNotFound -> undocumented_method,
ResponseNotFound -> undocumented_status, MissingRequiredParameter -> missing_parameter, other
parameter errors -> wrong_type, InvalidRequestBody/MissingRequiredRequestBody/InvalidData/
MediaTypeNotFound -> schema_violation. Errors about response headers (rxray does not check them) are
dropped; anything else is printed as other:<class> so a comparison fails on it.
"""
import json
import sys
import time
from urllib.parse import urlsplit, parse_qsl

from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse
from openapi_core.templating.paths.exceptions import PathNotFound, ServerNotFound, OperationNotFound
from openapi_core.templating.responses.exceptions import ResponseNotFound
from openapi_core.templating.media_types.exceptions import MediaTypeNotFound
from openapi_core.validation.request.exceptions import (
    ParametersError, MissingRequiredParameter, ParameterValidationError,
    InvalidRequestBody, MissingRequiredRequestBody,
)
from openapi_core.validation.response.exceptions import InvalidData, HeadersError, HeaderValidationError

HOST = "http://localhost:8080"


def header(headers, name):
    for n, v in headers:
        if n.lower() == name.lower():
            return v
    return None


def kind_of(e, side):
    if isinstance(e, (PathNotFound, ServerNotFound)):
        return "undocumented_path"
    if isinstance(e, OperationNotFound):
        return "undocumented_method"
    if isinstance(e, ResponseNotFound):
        return "undocumented_status"
    if isinstance(e, MissingRequiredParameter):
        return "missing_parameter"
    if isinstance(e, ParameterValidationError):
        return "wrong_type"
    if isinstance(e, (InvalidRequestBody, MissingRequiredRequestBody, InvalidData, MediaTypeNotFound)):
        return "schema_violation"
    cause = e.__cause__
    if isinstance(cause, MediaTypeNotFound):
        return "schema_violation"
    if isinstance(e, (HeadersError, HeaderValidationError)):
        return None
    return "other:" + type(e).__name__


def flatten(errors):
    for e in errors:
        if isinstance(e, ParametersError):
            yield from e.errors
        elif isinstance(e, HeadersError):
            continue
        else:
            yield e


def build(x):
    u = urlsplit(x["target"])
    args = parse_qsl(u.query, keep_blank_values=True)
    req = MockRequest(
        HOST, x["method"].lower(), u.path, args=args, headers=x["request_headers"],
        data=x["request_body"].encode(), content_type=header(x["request_headers"], "content-type") or "",
    )
    resp = MockResponse(
        x["response_body"].encode(), status_code=x["status"], headers=x["response_headers"],
        content_type=header(x["response_headers"], "content-type") or "",
    )
    return req, resp


def check(api, x):
    req, resp = build(x)
    kinds = []
    r = api.unmarshal_request(req)
    for e in flatten(r.errors):
        k = kind_of(e, "request")
        if k:
            kinds.append(k)
    if any(k in ("undocumented_path", "undocumented_method") for k in kinds):
        return sorted(set(kinds))
    r = api.unmarshal_response(req, resp)
    for e in flatten(r.errors):
        k = kind_of(e, "response")
        if k:
            kinds.append(k)
    return sorted(set(kinds))


def main():
    spec, path = sys.argv[1], sys.argv[2]
    api = OpenAPI.from_file_path(spec)
    xs = json.load(open(path))
    if len(sys.argv) > 4 and sys.argv[3] == "--bench":
        import resource
        n = int(sys.argv[4])
        t, cpu = time.perf_counter(), time.process_time()
        done = 0
        kinds = {}
        for r in range(n):
            for x in xs:
                for k in check(api, x):
                    if r == 0:
                        kinds[k] = kinds.get(k, 0) + 1
                done += 1
        print(json.dumps({
            "exchanges": done,
            "seconds": time.perf_counter() - t,
            "cpu_seconds": time.process_time() - cpu,
            "max_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "kinds_first_round": kinds,
        }))
        return
    print(json.dumps([check(api, x) for x in xs]))


if __name__ == "__main__":
    main()
