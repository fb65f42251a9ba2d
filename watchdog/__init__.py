"""dnssec-watchdog: watches DNSSEC signatures and warns before validators start to fail.

The engine is pure (no clock, no I/O): feed it observations and ``now``, get deadlines and
severities back. The prober, the store, the notifier and the service are the I/O shell around it.
"""

from watchdog.engine.assess import (
    RRsetVerdict,
    ServerVerdict,
    ZoneReport,
    assess_rrset,
    assess_zone,
)
from watchdog.engine.findings import Finding, Severity, worst
from watchdog.engine.observations import (
    ChainStatus,
    RRsetObservation,
    ServerObservation,
    SignatureObservation,
    Verification,
    ZoneObservation,
)
from watchdog.engine.profiles import (
    DEFAULT_SETTINGS,
    Profile,
    ValidatorSettings,
    Window,
    parse_profile,
    unbound_skew,
    window,
)
from watchdog.engine.timeline import (
    Deadline,
    Deadlines,
    SignatureTimeline,
    WarnBefore,
    ZonePolicy,
    signature_timeline,
)
from watchdog.engine.timeutil import (
    format_duration,
    format_relative,
    lifetime,
    parse_duration,
    rfc3339,
    serial_precedes,
    serial_to_posix,
)
from watchdog.errors import (
    ConfigError,
    DeliveryError,
    InvalidValueError,
    ProbeError,
    StateError,
    WatchdogError,
)

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_SETTINGS",
    "ChainStatus",
    "ConfigError",
    "Deadline",
    "Deadlines",
    "DeliveryError",
    "Finding",
    "InvalidValueError",
    "ProbeError",
    "Profile",
    "RRsetObservation",
    "RRsetVerdict",
    "ServerObservation",
    "ServerVerdict",
    "Severity",
    "SignatureObservation",
    "SignatureTimeline",
    "StateError",
    "ValidatorSettings",
    "Verification",
    "WarnBefore",
    "WatchdogError",
    "Window",
    "ZoneObservation",
    "ZonePolicy",
    "ZoneReport",
    "__version__",
    "assess_rrset",
    "assess_zone",
    "format_duration",
    "format_relative",
    "lifetime",
    "parse_duration",
    "parse_profile",
    "rfc3339",
    "serial_precedes",
    "serial_to_posix",
    "signature_timeline",
    "unbound_skew",
    "window",
    "worst",
]
