"""Real validators beside the prediction, as a table (engine/validators.py)."""

from __future__ import annotations

import pytest

from watchdog.engine.codes import Code
from watchdog.engine.findings import Severity
from watchdog.engine.observations import ChainStatus, ValidatorAnswer
from watchdog.engine.validators import validator_views

OK, WARN, STRICT, BOGUS = Severity.OK, Severity.WARNING, Severity.STRICT_FAIL, Severity.BOGUS
SECURE = ValidatorAnswer("127.0.0.1:53", "NOERROR", True)
SERVFAIL = ValidatorAnswer("127.0.0.1:53", "SERVFAIL", False, (9,))
PLAIN = ValidatorAnswer("127.0.0.1:53", "NOERROR", False)
SILENT = ValidatorAnswer("127.0.0.1:53", "", False, (), "127.0.0.1:53: example. SOA: no answer")
TA, NONE = ChainStatus.TRUST_ANCHOR, ChainStatus.NOT_CHECKED


@pytest.mark.parametrize(
    ("answer", "expiry", "severity", "chain", "predicted", "seen", "codes"),
    [
        (SECURE, OK, OK, TA, "secure", "secure", []),
        (SECURE, WARN, WARN, TA, "secure", "secure", []),
        (SERVFAIL, OK, OK, TA, "secure", "fails", [Code.VALIDATOR_FAILS]),
        (SERVFAIL, STRICT, STRICT, TA, "fails", "fails", []),  # as predicted
        (SERVFAIL, OK, BOGUS, TA, "fails", "fails", []),
        (PLAIN, OK, OK, TA, "secure", "insecure", [Code.VALIDATOR_INSECURE]),
        (PLAIN, OK, OK, NONE, "insecure", "insecure", []),  # nothing to validate against
        (SERVFAIL, OK, OK, NONE, "insecure", "fails", []),
        (SILENT, OK, OK, TA, "secure", "no answer", []),
    ],
)  # fmt: skip
def test_views_and_findings(
    answer: ValidatorAnswer,
    expiry: Severity,
    severity: Severity,
    chain: ChainStatus,
    predicted: str,
    seen: str,
    codes: list[Code],
) -> None:
    """A validator contradicting a valid prediction is named; agreeing ones are only shown."""
    views, findings = validator_views(
        "example.", [answer], expiry=expiry, severity=severity, chain=chain
    )
    assert [(v.predicted, v.seen) for v in views] == [(predicted, seen)]
    assert [f.code for f in findings] == codes
    assert all(f.server == "127.0.0.1:53" for f in findings)


def test_servfail_message_carries_the_ede_codes() -> None:
    """EDE codes are recorded in the message, not taken as the verdict."""
    _, [finding] = validator_views("example.", [SERVFAIL], expiry=OK, severity=OK, chain=TA)
    assert finding.severity is Severity.STRICT_FAIL
    assert "SERVFAIL (EDE 9)" in finding.message
