#!/usr/bin/env python3
"""Checks the traffic the HubSpot and Stream doubles served against the vendors' OpenAPI documents.

The doubles append every exchange they serve to `$SANDBOX_TRAFFIC_DIR/<service>-<pid>-<port>.jsonl` (one JSON line
each: `sandbox/src/support.rs`); `make test` runs the tests with that set, then this program over the directory:

    contract/validate.py DIR [--partial]

What is checked, and how (all of it by openapi-core, pinned in contract/requirements.txt; no schema code here):

* Each exchange a chat-sync client sent (its `User-Agent` starts with `chat-sync/`, as every client of
  `functions/chat-sync/src/adapters/http.rs` says) is matched to the vendored document of its service
  (`contract/specs/sources.json`; HubSpot's path prefixes pick the document: `DOCUMENTS` below) and to an operation
  there. Its request is validated (path and query parameters, content type, body), and its answer, when there was
  one (a client that gave up has none), against the response the operation lists for that status.
* Exchanges sent by anyone else are counted and left out: the widget's and the SDKs' browser or Node traffic (the
  Stream double serves them too) and tests that call a double directly, bad input included, to test the double.
* Security is not validated: the doubles authenticate every request (`sandbox/src/{hubspot,stream}/auth`) and the
  log never holds a credential, so the documents' security schemes are left to them.
* An answer whose status the operation does not list by itself is checked against the response an `[[answer_as]]`
  rule of contract/exceptions.toml names, when one matches (Stream lists 400 and 429 only, but answers every error
  with the same `APIError` body); otherwise as openapi-core finds it: HubSpot lists a `default` response (its
  `Error`) for every operation, Stream none, so an unlisted Stream status with no rule fails.
* Each failure is compared with contract/exceptions.toml: what a real service is known to accept or answer beyond
  its document, each entry specific (service, method, path template, request or response, where in the body,
  which schema keyword) and with its reason. An exception that matched nothing in the run is itself a failure,
  unless `--partial` says the traffic is from a part of the tests only.

Output: one line per distinct failure (service, method, path template, what failed, how often), then
`N passed, M failed` alone on a line (M counts failed exchanges and exceptions that matched nothing); exit status 1
on any failure, 2 on a usage or input error (no traffic at all is one: a broken capture must not pass).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator
from urllib.parse import parse_qsl

from jsonschema_path import SchemaPath
from openapi_core.datatypes import RequestParameters
from openapi_core.deserializing.media_types.util import json_loads
from openapi_core.templating.paths.exceptions import PathError
from openapi_core.templating.paths.finders import APICallPathFinder
from openapi_core.validation.request.validators import (
    V30RequestBodyValidator,
    V30RequestParametersValidator,
)
from openapi_core.validation.response.validators import V30ResponseDataValidator
from werkzeug.datastructures import Headers, ImmutableMultiDict

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "specs" / "sources.json"
EXCEPTIONS = HERE / "exceptions.toml"

# Which exchanges are chat-sync's: the User-Agent every client of adapters/http.rs sends.
CLIENT_AGENT = re.compile(r"^chat-sync/")

# Which vendored document describes a path, per service: the first pattern that matches wins. HubSpot publishes one
# document per object type with the same templated paths (`/crm/objects/2026-09/{objectType}/...`), so the object
# type in the path picks it; associations between objects live in their own document, whatever the prefix.
DOCUMENTS: dict[str, list[tuple[re.Pattern[str], str]]] = {
    "hubspot": [
        (re.compile(r"^/crm/associations/2026-09/"), "hubspot/associations.json"),
        (re.compile(r"^/crm/objects/2026-09/[^/]+/[^/]+/associations/"), "hubspot/associations.json"),
        (re.compile(r"^/crm/objects/2026-09/(contacts|0-1)(/|$)"), "hubspot/contacts.json"),
        (re.compile(r"^/crm/objects/2026-09/(notes|0-46)(/|$)"), "hubspot/notes.json"),
        (re.compile(r"^/crm/properties/2026-09/"), "hubspot/properties.json"),
        (re.compile(r"^/app-webhooks/2026-09/"), "hubspot/webhooks.json"),
    ],
    "stream": [(re.compile(r"^/"), "stream/chat-openapi.json")],
}


class InputError(Exception):
    """The traffic, the sources or the exceptions cannot be read: nothing was validated."""


@dataclass(frozen=True)
class Problem:
    """One thing that failed, in the terms the exceptions file uses."""

    part: str  # "request" or "response"
    at: str  # where: "parameters", "body", or a body location such as "data.members[*]"
    keyword: str  # the JSON Schema keyword that failed, or what openapi-core could not find
    message: str  # one example, for the reader
    missing: str = ""  # for `required`: the property that is missing

    def key(self) -> tuple[str, str, str]:
        return (self.part, self.at, self.keyword)


@dataclass
class Exchange:
    service: str
    method: str
    path: str
    query: str
    user_agent: str
    request_content_type: str
    request_body: str
    status: int | None
    response_content_type: str
    response_body: str

    @classmethod
    def parse(cls, line: str) -> "Exchange":
        raw = json.loads(line)
        status = raw.get("status")
        return cls(
            service=str(raw["service"]),
            method=str(raw["method"]).upper(),
            path=str(raw["path"]),
            query=str(raw.get("query") or ""),
            user_agent=str(raw.get("user_agent") or ""),
            request_content_type=str(raw.get("request_content_type") or ""),
            request_body=str(raw.get("request_body") or ""),
            status=int(status) if status is not None else None,
            response_content_type=str(raw.get("response_content_type") or ""),
            response_body=str(raw.get("response_body") or ""),
        )

    def identity(self) -> tuple:
        """Identical exchanges are validated once."""
        return (
            self.service,
            self.method,
            self.path,
            self.query,
            self.request_content_type,
            self.request_body,
            self.status,
            self.response_content_type,
            self.response_body,
        )


class Request:
    """openapi-core's request protocol over one logged exchange. No headers: the log keeps none (security is the
    doubles' to check, see the module doc)."""

    def __init__(self, host_url: str, exchange: Exchange):
        self.host_url = host_url
        self.path = exchange.path
        self.method = exchange.method.lower()
        self.content_type = exchange.request_content_type.lower()
        self.body = exchange.request_body.encode() if exchange.request_body else None
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(parse_qsl(exchange.query, keep_blank_values=True)),
            header=Headers(),
            cookie=ImmutableMultiDict(),
        )


class Response:
    """openapi-core's response protocol over one logged answer (`status` overrides it for the error-status rule)."""

    def __init__(self, exchange: Exchange, status: int | None = None):
        self.status_code = status if status is not None else exchange.status
        self.content_type = exchange.response_content_type.lower()
        self.data = exchange.response_body.encode()
        self.headers = Headers()


@dataclass
class Document:
    file: str
    host_url: str
    spec: SchemaPath
    finder: APICallPathFinder
    request_parameters: V30RequestParametersValidator
    request_body: V30RequestBodyValidator
    response_data: V30ResponseDataValidator

    @classmethod
    def load(cls, file: str) -> "Document":
        data = json.loads((HERE / "specs" / file).read_text(encoding="utf-8"))
        servers = data.get("servers") or [{"url": ""}]
        host_url = servers[0]["url"].rstrip("/")
        spec = SchemaPath.from_dict(data)
        # HubSpot's documents give their `Error` answers the media range `*/*`, for which openapi-core has no
        # deserializer (it would check the raw bytes against the schema): both services answer JSON, so a range is
        # read as JSON, and a body that is not JSON fails.
        config = {"extra_media_type_deserializers": {"*/*": json_loads}}
        return cls(
            file=file,
            host_url=host_url,
            spec=spec,
            finder=APICallPathFinder(spec),
            request_parameters=V30RequestParametersValidator(spec, **config),
            request_body=V30RequestBodyValidator(spec, **config),
            response_data=V30ResponseDataValidator(spec, **config),
        )

    def lists(self, method: str, template: str, status: int) -> bool:
        """Whether the operation lists a response for exactly this status (not only a `default`)."""
        operation = self.spec / "paths" / template / method.lower()
        return str(status) in (operation / "responses").keys()

    def template(self, method: str, path: str) -> str | None:
        try:
            found = self.finder.find(method.lower(), self.host_url + path)
        except PathError:
            return None
        return str(found.path.parts[-1]) if found.path.parts else None


@dataclass
class Rules:
    """contract/exceptions.toml, checked when read: every entry says why.

    `[[answer_as]]`: answers with a status the operation does not list by itself are checked against the response
    it lists for another (`validate_as`); scoped to a service, and optionally to methods and path templates.
    `[[exception]]`: one failure that is not one, matched exactly (service, method, path template, part, where,
    keyword, and optionally the answer's status and the missing property of a `required`)."""

    answer_as: list[dict[str, Any]]
    exceptions: list[dict[str, Any]]
    used: Counter = field(default_factory=Counter)
    answers_remapped: Counter = field(default_factory=Counter)

    REQUIRED = ("service", "method", "path", "part", "at", "keyword", "reason")
    # A wildcard method and path are only for what the service does in front of every operation (its rate limiter):
    # such an entry must name the status, and for `required` the one property that may be missing.
    WILDCARD = "*"

    @classmethod
    def load(cls, path: Path) -> "Rules":
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise InputError(f"{path}: {e}") from e
        answer_as = raw.get("answer_as", [])
        for rule in answer_as:
            if not {"service", "statuses", "validate_as", "reason"} <= rule.keys():
                raise InputError(f"{path}: an [[answer_as]] needs service, statuses, validate_as and reason: {rule}")
            for status in rule["statuses"]:
                if not (isinstance(status, int) or status in ("4xx", "5xx")):
                    raise InputError(f"{path}: statuses are numbers, \"4xx\" or \"5xx\": {rule}")
        exceptions = raw.get("exception", [])
        for entry in exceptions:
            missing = [k for k in cls.REQUIRED if not entry.get(k)]
            if missing:
                raise InputError(f"{path}: an [[exception]] lacks {', '.join(missing)}: {entry}")
            wild = cls.WILDCARD in (entry["method"], entry["path"])
            if wild and ("status" not in entry or (entry["keyword"] == "required" and "missing" not in entry)):
                raise InputError(f"{path}: a wildcard [[exception]] must name its status (and missing): {entry}")
        return cls(answer_as=answer_as, exceptions=exceptions)

    def remap(self, service: str, method: str, template: str, status: int) -> int | None:
        """The status whose response an answer with `status` is checked against, if a rule says so."""
        for index, rule in enumerate(self.answer_as):
            if rule["service"] != service:
                continue
            if "methods" in rule and method not in rule["methods"]:
                continue
            if "paths" in rule and template not in rule["paths"]:
                continue
            if any(s == status or (isinstance(s, str) and s[0] == str(status)[0]) for s in rule["statuses"]):
                self.answers_remapped[index] += 1
                return int(rule["validate_as"])
        return None

    def excepted(self, service: str, method: str, template: str, status: int | None, problem: Problem) -> bool:
        for index, entry in enumerate(self.exceptions):
            if (
                entry["service"] == service
                and entry["method"] in (method, self.WILDCARD)
                and entry["path"] in (template, self.WILDCARD)
                and entry["part"] == problem.part
                and entry["at"] == problem.at
                and entry["keyword"] == problem.keyword
                and ("status" not in entry or entry["status"] == status)
                and ("missing" not in entry or entry["missing"] == problem.missing)
            ):
                self.used[index] += 1
                return True
        return False

    def unused(self) -> Iterator[str]:
        for index, entry in enumerate(self.exceptions):
            if not self.used[index]:
                yield (
                    f"{entry['service']} {entry['method']} {entry['path']} {entry['part']} {entry['at']} "
                    f"{entry['keyword']}"
                )
        for index, rule in enumerate(self.answer_as):
            if not self.answers_remapped[index]:
                yield f"answer_as {rule['service']} {rule.get('methods', '')} {rule.get('paths', '')} {rule['statuses']}"


def schema_location(error: Any) -> tuple[str, str]:
    """Where a JSON Schema error is, as a stable name for the schema's place (`data.members[*]`), and its keyword.

    The schema path (not the instance path) names it, so a map keyed by ids or a long list gives one name."""
    parts = list(error.relative_schema_path)
    keyword = str(parts.pop()) if parts else str(error.validator)
    at = ""
    i = 0
    while i < len(parts):
        step = parts[i]
        if step == "properties" and i + 1 < len(parts):
            at += f".{parts[i + 1]}"
            i += 2
            continue
        if step == "items":
            at += "[*]"
        elif step == "additionalProperties":
            at += ".*"
        elif step in ("allOf", "anyOf", "oneOf") and i + 1 < len(parts):
            i += 1  # which branch: not part of the name
        i += 1
    return (at.lstrip(".") or "(root)", keyword)


def message(error: Any) -> str:
    """What a JSON Schema error says, without the value when that is an id or a whole object: equal failures at
    one place then read the same, and a missing property is named."""
    if error.validator == "required":
        return str(error.message)
    if error.validator == "type":
        return f"{type(error.instance).__name__} where the document has {error.validator_value}"
    if error.validator in ("enum", "const"):
        return f"{error.instance!r} is not one of {error.validator_value!r}"
    return str(error.message)


def missing_property(error: Any) -> str:
    """The property a `required` error is about (jsonschema reports each missing one as its own error)."""
    if error.validator != "required" or not isinstance(error.instance, dict):
        return ""
    for name in error.validator_value:
        if name not in error.instance and repr(name) in str(error.message):
            return str(name)
    return ""


def schema_errors(error: BaseException) -> list[Any]:
    seen: BaseException | None = error
    while seen is not None:
        errors = getattr(seen, "schema_errors", None)
        if errors:
            return list(errors)
        seen = seen.__cause__
    return []


def problems(part: str, area: str, errors: Iterable[BaseException]) -> Iterator[Problem]:
    for error in errors:
        found = schema_errors(error)
        if not found:
            cause = error.__cause__
            detail = f"{error}" + (f": {cause}" if cause is not None and str(cause) not in str(error) else "")
            name = getattr(error, "name", None)
            yield Problem(part, f"{area} {name}" if name else area, type(error).__name__, detail)
            continue
        for one in found:
            at, keyword = schema_location(one)
            place = f"{area} {at}" if area != "body" else at
            yield Problem(part, place, keyword, message(one), missing_property(one))


@dataclass
class Outcome:
    template: str
    problems: list[Problem]  # not excepted
    excepted: int
    remapped: bool = False  # the answer was checked by an [[answer_as]] rule


class Validator:
    def __init__(self, rules: Rules):
        self.rules = rules
        self.documents: dict[str, Document] = {}
        for entry in json.loads(SOURCES.read_text(encoding="utf-8"))["documents"]:
            self.documents[entry["file"]] = Document.load(entry["file"])
        self.cache: dict[tuple, Outcome] = {}

    def document(self, exchange: Exchange) -> Document | None:
        for pattern, file in DOCUMENTS.get(exchange.service, []):
            if pattern.search(exchange.path):
                return self.documents.get(file)
        return None

    def check(self, exchange: Exchange) -> Outcome:
        key = exchange.identity()
        if key not in self.cache:
            self.cache[key] = self._check(exchange)
        return self.cache[key]

    def _check(self, exchange: Exchange) -> Outcome:
        document = self.document(exchange)
        if document is None:
            problem = Problem("request", "path", "PathNotFound", "no vendored document covers this path")
            return Outcome(exchange.path, [problem], 0)
        template = document.template(exchange.method, exchange.path)
        if template is None:
            problem = Problem(
                "request", "path", "PathNotFound", f"{document.file} has no {exchange.method} {exchange.path}"
            )
            return Outcome(exchange.path, [problem], 0)
        request = Request(document.host_url, exchange)
        found = list(problems("request", "parameters", document.request_parameters.iter_errors(request)))
        found += problems("request", "body", document.request_body.iter_errors(request))
        remapped = False
        if exchange.status is not None:
            answer, remapped = self._response(document, exchange, request, template)
            found += answer
        kept = [
            p
            for p in found
            if not self.rules.excepted(exchange.service, exchange.method, template, exchange.status, p)
        ]
        return Outcome(template, kept, len(found) - len(kept), remapped)

    def _response(
        self, document: Document, exchange: Exchange, request: Request, template: str
    ) -> tuple[list[Problem], bool]:
        """The answer's problems, and whether an [[answer_as]] rule chose the response it is checked against."""
        status = exchange.status or 0
        if not document.lists(exchange.method, template, status):
            # A status the operation lists no response for by itself (openapi-core would take `default`, or fail).
            as_status = self.rules.remap(exchange.service, exchange.method, template, status)
            if as_status is not None:
                errors = document.response_data.iter_errors(request, Response(exchange, as_status))
                return (list(problems("response", "body", errors)), True)
        errors = document.response_data.iter_errors(request, Response(exchange))
        return (list(problems("response", "body", errors)), False)


def places(exchange: Exchange, outcome: Outcome) -> dict[tuple, Problem]:
    """An exchange's failures, once per place: a request's whatever the answer was, an answer's per status."""
    found: dict[tuple, Problem] = {}
    for problem in outcome.problems:
        status = exchange.status if problem.part == "response" else None
        found.setdefault((exchange.service, exchange.method, outcome.template, status) + problem.key(), problem)
    return found


def read_traffic(directory: Path) -> Iterator[tuple[str, int, Exchange]]:
    files = sorted(directory.glob("*.jsonl"))
    if not files:
        raise InputError(f"no traffic in {directory} (was SANDBOX_TRAFFIC_DIR set for the tests?)")
    for file in files:
        with file.open(encoding="utf-8", errors="replace") as lines:
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    yield (file.name, number, Exchange.parse(line))
                except (ValueError, KeyError, TypeError) as e:
                    raise InputError(f"{file}:{number}: not an exchange: {e}") from e


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("traffic", type=Path, help="the directory SANDBOX_TRAFFIC_DIR named")
    parser.add_argument(
        "--partial",
        action="store_true",
        help="the traffic is from part of the tests: exceptions that match nothing are not failures",
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        rules = Rules.load(EXCEPTIONS)
        validator = Validator(rules)
        traffic = list(read_traffic(args.traffic))
    except InputError as e:
        print(f"contract: {e}", file=sys.stderr)
        return 2

    passed = failed = excepted = remapped = 0
    others: Counter = Counter()
    failures: dict[tuple, list] = {}
    for _file, _line, exchange in traffic:
        if not CLIENT_AGENT.search(exchange.user_agent):
            others[exchange.service] += 1
            continue
        outcome = validator.check(exchange)
        if outcome.excepted:
            excepted += 1
        if outcome.remapped:
            remapped += 1
        if not outcome.problems:
            passed += 1
            continue
        failed += 1
        for key, problem in places(exchange, outcome).items():
            entry = failures.setdefault(key, [problem, 0, set()])
            entry[1] += 1
            entry[2].update(p.message for p in outcome.problems if (p.part, p.at, p.keyword) == key[-3:])

    for (service, method, template, status, part, at, keyword), (_, count, messages) in sorted(
        failures.items(), key=lambda item: tuple(str(x) for x in item[0])
    ):
        answered = f" (answer {status})" if status is not None else ""
        examples = sorted(messages)
        shown = "; ".join(examples[:12]) + (f"; and {len(examples) - 12} more" if len(examples) > 12 else "")
        print(
            f"FAIL {service} {method} {template}{answered}: {part} {at}: {keyword}: {shown} "
            f"[{count} exchange{'s' if count != 1 else ''}]"
        )

    stale = 0
    if not args.partial:
        for entry in rules.unused():
            stale += 1
            print(f"FAIL contract/exceptions.toml: {entry} matched nothing: remove it")

    elapsed = time.monotonic() - started
    distinct = len(validator.cache)
    print(
        f"contract: {passed + failed} exchanges by chat-sync's clients validated ({distinct} distinct) against "
        f"{len(validator.documents)} vendored documents in {elapsed:.1f}s; {excepted} passed only by an "
        f"[[exception]], {remapped} answers checked by an [[answer_as]] rule; "
        f"not validated, sent by others (browser and Node SDKs, tests calling a double "
        f"directly): {', '.join(f'{n} {s}' for s, n in sorted(others.items())) or 'none'}"
    )
    print(f"{passed} passed, {failed + stale} failed")
    return 1 if failed or stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
