"""Real validators beside the prediction: what the operator's resolvers answered, compared.

Pure: the answers the prober recorded (ValidatorAnswer) and the engine's own verdict in,
one view per validator and findings out. The engine predicts that a validator validates the
zone when its strict deadline is not passed, nothing is bogus and the chain of trust was
checked (parent DS or trust anchor). A validator that answers SERVFAIL then is
``validator_fails`` (a validator's users cannot resolve the zone now, whatever the engine
thinks: a trust anchor of its own, a clock, a policy); one that answers without AD for a zone
with a chain is ``validator_insecure`` (its users get no DNSSEC protection). EDE codes are shown,
not judged: validators send wrong ones at times.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from watchdog.engine.codes import Code
from watchdog.engine.findings import Finding, Severity
from watchdog.engine.observations import ChainStatus, ValidatorAnswer

__all__ = ["ValidatorView", "validator_views"]

_VALIDATES = frozenset({Severity.OK, Severity.WARNING})
_CHAINED = frozenset({ChainStatus.PARENT_DS, ChainStatus.TRUST_ANCHOR})


@dataclass(frozen=True, slots=True)
class ValidatorView:
    """One validator's answer beside what the engine predicted for it."""

    answer: ValidatorAnswer
    predicted: str  # "secure", "fails" or "insecure" (no chain to validate against)

    @property
    def seen(self) -> str:
        """What the validator did, in the same words: secure, fails, insecure or no answer."""
        a = self.answer
        if a.error:
            return "no answer"
        if a.rcode == "SERVFAIL":
            return "fails"
        if a.rcode == "NOERROR":
            return "secure" if a.authenticated else "insecure"
        return a.rcode.lower()


def validator_views(
    zone: str,
    answers: Sequence[ValidatorAnswer],
    *,
    expiry: Severity,
    severity: Severity,
    chain: ChainStatus,
) -> tuple[tuple[ValidatorView, ...], list[Finding]]:
    """Each validator's view and the findings where it contradicts the prediction."""
    chained = chain in _CHAINED
    if not chained:
        predicted = "insecure"
    elif expiry in _VALIDATES and severity is not Severity.BOGUS:
        predicted = "secure"
    else:
        predicted = "fails"
    views = tuple(ValidatorView(a, predicted) for a in answers)
    findings = []
    for view in views:
        a = view.answer
        ede = f" (EDE {', '.join(str(c) for c in a.ede)})" if a.ede else ""
        if view.seen == "fails" and predicted == "secure":
            findings.append(
                Finding(
                    Code.VALIDATOR_FAILS,
                    Code.VALIDATOR_FAILS.severity,
                    f"{zone}: validator {a.address} answers SERVFAIL{ede} for a zone the "
                    "engine judges valid: its users cannot resolve the zone (check its trust "
                    "anchor, clock and policy)",
                    a.address,
                    zone,
                )
            )
        elif view.seen == "insecure" and chained:
            findings.append(
                Finding(
                    Code.VALIDATOR_INSECURE,
                    Code.VALIDATOR_INSECURE.severity,
                    f"{zone}: validator {a.address} answers without AD{ede} for a zone with a "
                    "chain of trust: it does not validate it",
                    a.address,
                    zone,
                )
            )
    return views, findings
