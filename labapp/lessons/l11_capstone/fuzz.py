"""A short schemathesis run against the learner's app: its own OpenAPI document, valid and
invalid requests to every operation, signed in as alice. Any 5xx is a finding."""

from __future__ import annotations

import copy
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.generation import GenerationMode

EXAMPLES = 5  # per operation and mode: the grade's budget is 10 s in all


def server_errors(app: Any, url: str, headers: dict[str, str], ca_file: str) -> list[str]:
    """What schemathesis answered with a 5xx, as 'METHOD /path -> status'."""
    app.openapi_schema = None  # a route added since the last document
    schema = schemathesis.openapi.from_dict(copy.deepcopy(app.openapi()))
    found: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        strategy = operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(
            GenerationMode.NEGATIVE
        )

        @given(case=strategy)
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,  # the same requests on every grade: a finding stays found
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def call(case: Any) -> None:
            response = case.call(base_url=url, headers=headers, verify=ca_file, timeout=5)
            if response.status_code >= 500:
                found.append(f"{case.method} {case.formatted_path} -> {response.status_code}")

        call()
    return found
