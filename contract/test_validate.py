"""The contract check checks: a few exchanges it must fail and pass, so a validator that passes everything (a
mapping gone wrong, an openapi-core that changed) cannot go unnoticed. `make test` runs it before the check.

    .venv/bin/python -m unittest contract/test_validate.py
"""

import contextlib
import io
import json
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import validate  # noqa: E402

AGENT = "chat-sync/0.1.0"
TASK = {
    "task_id": "0b7f3c1e-0000-4000-8000-000000000001",
    "status": "completed",
    "created_at": "2026-11-24T10:00:00.000Z",
    "updated_at": "2026-11-24T10:00:01.000Z",
    "duration": "1.00ms",
}
API_ERROR = {
    "code": 16,
    "message": "GetTask failed with error: \"task does not exist\"",
    "StatusCode": 404,
    "duration": "0.00ms",
    "more_info": "https://getstream.io/chat/docs/api_errors_response",
    "details": [],
}


def exchange(method, path, body=None, status=None, answer=None, agent=AGENT, service="stream"):
    return {
        "service": service,
        "route": "test",
        "method": method,
        "path": path,
        "query": "api_key=key",
        "user_agent": agent,
        "request_content_type": "application/json" if body is not None else "",
        "request_body": json.dumps(body) if body is not None else "",
        "status": status,
        "response_content_type": "application/json" if answer is not None else None,
        "response_body": json.dumps(answer) if answer is not None else None,
    }


def run(exchanges, *args):
    """The check over `exchanges`: (exit status, output)."""
    with tempfile.TemporaryDirectory() as directory:
        if exchanges:
            lines = "".join(json.dumps(e) + "\n" for e in exchanges)
            (Path(directory) / "stream-1-1.jsonl").write_text(lines, encoding="utf-8")
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            status = validate.main([directory, "--partial", *args])
        return status, out.getvalue()


class ContractCheck(unittest.TestCase):
    def test_members_as_bare_ids_fail_and_as_objects_pass(self):
        path = "/channels/messaging/support-1/query"
        bare = {"data": {"created_by_id": "agent", "members": ["agent", "visitor-1"]}}
        status, out = run([exchange("POST", path, bare)])
        self.assertEqual(status, 1, out)
        self.assertIn("POST /channels/{type}/{id}/query: request data.members[*]: type", out)
        self.assertIn("0 passed, 1 failed", out)
        objects = {"data": {"created_by_id": "agent", "members": [{"user_id": "agent"}]}}
        status, out = run([exchange("POST", path, objects)])
        self.assertEqual(status, 0, out)
        self.assertIn("1 passed, 0 failed", out)

    def test_an_answer_is_held_to_its_schema(self):
        status, out = run([exchange("GET", "/tasks/t1", status=200, answer=TASK)])
        self.assertEqual(status, 0, out)
        renamed = {("id" if k == "task_id" else k): v for k, v in TASK.items()}
        status, out = run([exchange("GET", "/tasks/t1", status=200, answer=renamed)])
        self.assertEqual(status, 1, out)
        self.assertIn("'task_id' is a required property", out)

    def test_an_unlisted_stream_error_is_checked_as_apierror(self):
        status, out = run([exchange("GET", "/tasks/t1", status=404, answer=API_ERROR)])
        self.assertEqual(status, 0, out)
        self.assertIn("1 answers checked by an [[answer_as]] rule", out)
        status, out = run([exchange("GET", "/tasks/t1", status=404, answer={"error": "nope"})])
        self.assertEqual(status, 1, out)

    def test_a_path_outside_the_documents_fails(self):
        status, out = run([exchange("DELETE", "/users/visitor-1")])
        self.assertEqual(status, 1, out)
        self.assertIn("PathNotFound", out)
        status, out = run([exchange("GET", "/crm/v3/objects/contacts/1", service="hubspot")])
        self.assertEqual(status, 1, out)

    def test_others_traffic_is_counted_not_validated(self):
        status, out = run([exchange("DELETE", "/users/visitor-1", agent="stream-chat-js-v9")])
        self.assertEqual(status, 0, out)
        self.assertIn("1 stream", out)

    def test_no_traffic_or_a_torn_line_is_an_input_error(self):
        status, out = run([])
        self.assertEqual(status, 2, out)
        with tempfile.TemporaryDirectory() as directory:
            (Path(directory) / "stream-1-1.jsonl").write_text('{"service": "str', encoding="utf-8")
            with contextlib.redirect_stderr(io.StringIO()):
                self.assertEqual(validate.main([directory]), 2)

    def test_every_exception_says_why(self):
        rules = validate.Rules.load(validate.EXCEPTIONS)
        for entry in rules.exceptions + rules.answer_as:
            self.assertGreater(len(entry["reason"]), 40, entry)


if __name__ == "__main__":
    unittest.main()
