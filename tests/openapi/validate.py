#!/usr/bin/env python3
"""Validates requests smsotpd sent (as recorded by the fake Twilio) against
Twilio's official OpenAPI descriptions in tests/.cache/twilio-oai/
(tests/fetch-twilio-oai.sh fetches them from the npm registry).

Usage: validate.py SPEC_DIR REQUESTS.json
REQUESTS.json: [{"api": "api"|"verify", "method", "path", "headers": {...}, "body"}]

openapi-core does not check Twilio's x-twilio.conditional rules, unknown
parameters or E.164 syntax, so those are checked here by hand.
Exit 0 when every request is valid; otherwise each problem is printed.
"""
import json
import re
import sys
from urllib.parse import parse_qs, unquote

from openapi_core import OpenAPI
from openapi_core.testing import MockRequest

E164 = re.compile(r"^\+[1-9][0-9]{7,14}$")


def load(spec_dir, name):
    # json.load, not openapi-core's file loader: its YAML parser chokes on an
    # emoji escape in the v2010 file.
    with open(f"{spec_dir}/{name}", encoding="utf-8") as f:
        return OpenAPI.from_dict(json.load(f))


def manual_checks(req, form, spec_props):
    problems = []
    unknown = set(form) - spec_props
    if unknown:
        problems.append(f"parameters not in the spec: {sorted(unknown)}")
    if "To" in form and not E164.match(form["To"]):
        problems.append("To is not E.164")
    if req["path"].endswith("/Messages.json"):
        if ("From" in form) == ("MessagingServiceSid" in form):
            problems.append("exactly one of From / MessagingServiceSid is required")
        if "Body" not in form:
            problems.append("Body is required (x-twilio.conditional)")
    if req["path"].endswith("/Calls.json"):
        if sum(k in form for k in ("Url", "Twiml", "ApplicationSid")) != 1:
            problems.append("exactly one of Url / Twiml / ApplicationSid is required (x-twilio.conditional)")
        if "From" not in form:
            problems.append("From is required")
    if req["path"].endswith("/VerificationCheck"):
        if "Code" not in form or ("To" not in form and "VerificationSid" not in form):
            problems.append("VerificationCheck needs Code and To or VerificationSid")
    return problems


def main():
    spec_dir, requests_file = sys.argv[1], sys.argv[2]
    specs = {
        "api": (load(spec_dir, "twilio_api_v2010.json"), "https://api.twilio.com"),
        "verify": (load(spec_dir, "twilio_verify_v2.json"), "https://verify.twilio.com"),
        "lookups": (load(spec_dir, "twilio_lookups_v2.json"), "https://lookups.twilio.com"),
    }
    raw_specs = {}
    for key, name in (
        ("api", "twilio_api_v2010.json"),
        ("verify", "twilio_verify_v2.json"),
        ("lookups", "twilio_lookups_v2.json"),
    ):
        with open(f"{spec_dir}/{name}", encoding="utf-8") as f:
            raw_specs[key] = json.load(f)
    with open(requests_file, encoding="utf-8") as f:
        requests = json.load(f)
    failures = 0
    kinds = set()
    for req in requests:
        spec, host = specs[req["api"]]
        headers = {k.title(): v for k, v in req["headers"].items()}
        path, _, query = req["path"].partition("?")
        args = {k: v[0] for k, v in parse_qs(query).items()}
        mock = MockRequest(
            host,
            req["method"].lower(),
            unquote(path),
            args=args,
            headers=headers,
            data=req["body"].encode(),
            content_type="application/x-www-form-urlencoded",
        )
        problems = []
        try:
            spec.validate_request(mock)
        except Exception as e:  # noqa: BLE001 - report every validation error
            problems.append(f"{type(e).__name__}: {e}; {getattr(e, '__cause__', '')}")
        form = {k: v[0] for k, v in parse_qs(req["body"], keep_blank_values=True).items()}
        template = re.sub(r"AC[0-9a-f]{32}", "{AccountSid}", path)
        template = re.sub(r"^/v2/PhoneNumbers/[^/]+$", "/v2/PhoneNumbers/{PhoneNumber}", template)
        template = re.sub(r"VA[0-9a-f]{32}", "{ServiceSid}", template)
        template = re.sub(r"/Messages/(SM|MM)[0-9a-f]{32}\.json$", "/Messages/{Sid}.json", template)
        path_item = raw_specs[req["api"]]["paths"].get(template)
        if path_item is None or req["method"].lower() not in path_item:
            problems.append(f"no operation {req['method']} {template} in the spec")
        elif req["method"] == "GET":
            if req["body"]:
                problems.append("a GET with a body")
            known = {p["name"] for p in path_item["get"].get("parameters", []) if p.get("in") == "query"}
            if set(args) - known:
                problems.append(f"query parameters not in the spec: {sorted(set(args) - known)}")
            if template.endswith("{PhoneNumber}") and not E164.match(unquote(path).rsplit("/", 1)[1]):
                problems.append("the looked-up number is not E.164")
        else:
            op = path_item["post"]
            props = set(op["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]["properties"])
            problems += manual_checks(req, form, props)
        kinds.add(template)
        status = "ok" if not problems else "INVALID"
        print(f"{status}: {req['method']} {template} {sorted(form)}")
        for p in problems:
            print(f"    {p}")
            failures += 1
    print(f"checked {len(requests)} requests of {len(kinds)} kinds against Twilio's OpenAPI files")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
