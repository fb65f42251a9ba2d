"""Finding codes: the one registry of every ``Finding.code`` the watchdog can emit.

A code is stable and machine-readable: it appears in ``--json`` output, in webhook bodies and
in the README's table of finding codes (tests/engine/test_codes.py keeps that table and this
registry in step). Each member carries the severity it usually comes with and a one-line
meaning; the emitting module may still pick another severity where the context decides (a
broken signature is only a note while a sibling carries the RRset).

Adding a code is one line below, in the group of the module that emits it, plus its row in the
README's table.
"""

from __future__ import annotations

from enum import StrEnum

from watchdog.engine.findings import Severity

__all__ = ["Code"]

_OK, _WARNING, _UNKNOWN = Severity.OK, Severity.WARNING, Severity.UNKNOWN
_UNREACHABLE, _STRICT_FAIL = Severity.UNREACHABLE, Severity.STRICT_FAIL
_SKEW_EXHAUSTED, _BOGUS = Severity.SKEW_EXHAUSTED, Severity.BOGUS


class Code(StrEnum):
    """A finding code; its value is the string the outside world sees."""

    severity: Severity
    meaning: str

    def __new__(cls, value: str, severity: Severity, meaning: str) -> Code:
        member = str.__new__(cls, value)
        member._value_ = value
        member.severity = severity
        member.meaning = meaning
        return member

    # -- signatures and RRsets (watchdog.engine.assess) -----------------------------------------
    SIGNATURE_EXPIRING = "signature_expiring", _WARNING, "an RRset's signatures expire soon"
    SIGNATURE_EXPIRED = "signature_expired", _STRICT_FAIL, "strict validators reject the RRset"
    SIGNATURE_SKEW_EXHAUSTED = (
        "signature_skew_exhausted",
        _SKEW_EXHAUSTED,
        "even Unbound's skew allowance no longer accepts the RRset",
    )
    SIGNATURE_NOT_YET_VALID = (
        "signature_not_yet_valid",
        _STRICT_FAIL,
        "every signature's inception is still ahead (signer clock or inception offset)",
    )
    SIGNATURE_EXPIRES_EARLY = (
        "signature_expires_early",
        _OK,
        "a signature expires before its siblings; another one carries the RRset",
    )
    SIGNATURE_INVERTED = (
        "signature_inverted",
        _BOGUS,
        "an RRSIG's inception is after its expiration",
    )
    SIGNATURE_BOGUS = "signature_bogus", _BOGUS, "a signature does not verify with its key"
    SIGNATURE_NO_KEY = (
        "signature_no_key",
        _BOGUS,
        "no (DS-matched, for DNSKEY) key with the signature's key tag and algorithm",
    )
    SIGNATURE_UNSUPPORTED_ALGORITHM = (
        "signature_unsupported_algorithm",
        _UNKNOWN,
        "a signature uses an algorithm this host cannot check",
    )
    RRSET_UNSIGNED = "rrset_unsigned", _BOGUS, "an RRset of a signed zone is served without RRSIG"

    # -- servers and the zone (watchdog.engine.assess) ------------------------------------------
    UNREACHABLE = "unreachable", _UNREACHABLE, "a server gave no answer"
    ALL_UNREACHABLE = "all_unreachable", _UNREACHABLE, "no authoritative server answered"
    STALE_SERIAL = "stale_serial", _OK, "a server serves an older SOA serial than the others"
    NOT_SIGNED = "not_signed", _UNKNOWN, "no server serves a DNSKEY RRset: nothing to watch"
    CHAIN_NOT_CHECKED = (
        "chain_not_checked",
        _OK,
        "no DS at the parent and no trust anchor: the chain of trust was not checked",
    )
    DS_MISMATCH = "ds_mismatch", _BOGUS, "no served DNSKEY matches the DS or trust anchor"

    # -- the signer's refresh pattern (watchdog.engine.stall) ----------------------------------
    SIGNER_STALLED = (
        "signer_stalled",
        _WARNING,
        "signatures are older than the signer ever let them get: it stopped refreshing",
    )
    SECONDARY_STALLED = (
        "secondary_stalled",
        _WARNING,
        "one server's signatures stopped advancing while the others' kept refreshing",
    )

    # -- zone hygiene lints (watchdog.engine.lints) ---------------------------------------------
    SOA_EXPIRE_BEYOND_SIGNATURES = (
        "soa_expire_beyond_signatures",
        _WARNING,
        "SOA EXPIRE outlasts the validity signatures have left when refreshed",
    )
    TTL_BEYOND_REFRESH = (
        "ttl_beyond_refresh",
        _OK,
        "a TTL longer than the refresh interval or a tenth of the signature lifetime",
    )
    NSEC3_PARAMETERS = (
        "nsec3_parameters",
        _WARNING,
        "NSEC3 with extra iterations or a salt (RFC 9276); above 100 validators may fail it",
    )
    ALGORITHM_DEPRECATED = (
        "algorithm_deprecated",
        _WARNING,
        "a DNSKEY algorithm or DS digest type RFC 8624 says not to use",
    )
    KEY_INVENTORY = (
        "key_inventory",
        _OK,
        "a key that signs nothing, a rollover in progress, or CDS/CDNSKEY trouble",
    )
    SIGNER_CLOCK_AHEAD = (
        "signer_clock_ahead",
        _WARNING,
        "the newest inception is more than 60 s in the future: the signer's clock runs ahead",
    )

    # -- the operator's validators beside the prediction (watchdog.engine.validators) ----------
    VALIDATOR_FAILS = (
        "validator_fails",
        _STRICT_FAIL,
        "a configured validator answers SERVFAIL for a zone the engine judges valid",
    )
    VALIDATOR_INSECURE = (
        "validator_insecure",
        _WARNING,
        "a configured validator answers without AD for a zone with a chain of trust",
    )

    # -- observations (watchdog.probe.assemble) -------------------------------------------------
    NXDOMAIN_APEX = "nxdomain_apex", _UNREACHABLE, "a server answers NXDOMAIN for the zone apex"
    EXTRA_NXDOMAIN = "extra_nxdomain", _UNKNOWN, "a configured extra name does not exist"
    NODATA = "nodata", _UNKNOWN, "a server has no RRset of the type asked for"
    CNAME_AT_APEX = "cname_at_apex", _UNREACHABLE, "the zone apex is an alias, not a zone"
    NO_SOA = "no_soa", _UNREACHABLE, "a server does not serve the zone (no SOA at the apex)"
    NO_DNSKEY = "no_dnskey", _BOGUS, "a server serves no DNSKEY RRset in a signed zone"
    DENIAL_MISSING = "denial_missing", _BOGUS, "a server denies a name without NSEC or NSEC3"
    CHAIN_UNVERIFIED = (
        "chain_unverified",
        _UNKNOWN,
        "no DNSKEY answer to check the DS or trust anchor against",
    )
    DS_UNSUPPORTED = "ds_unsupported", _UNKNOWN, "every DS uses an algorithm or digest we lack"

    # -- discovery through the resolver (watchdog.probe.discovery) ------------------------------
    NO_RESOLVER = "no_resolver", _UNKNOWN, "no resolver configured to discover servers with"
    NS_LOOKUP_FAILED = "ns_lookup_failed", _UNKNOWN, "the resolver could not answer the NS query"
    ZONE_NXDOMAIN = "zone_nxdomain", _UNKNOWN, "the resolver says the zone does not exist"
    NO_NS = "no_ns", _UNKNOWN, "the resolver returns no NS records for the zone"
    DS_LOOKUP_FAILED = "ds_lookup_failed", _UNKNOWN, "the resolver could not answer the DS query"
    NS_NO_ADDRESS = "ns_no_address", _UNKNOWN, "a nameserver name has no A or AAAA record"
    ADDRESS_LOOKUP_FAILED = (
        "address_lookup_failed",
        _UNKNOWN,
        "the resolver could not answer a nameserver's address query",
    )

    # -- the prober (watchdog.probe.prober) -----------------------------------------------------
    INVALID_TARGET = "invalid_target", _UNKNOWN, "the zone or a server given cannot be probed"
    NO_SERVERS = "no_servers", _UNREACHABLE, "no authoritative server address could be probed"
    FAMILY_UNREACHABLE = (
        "family_unreachable",
        _OK,
        "this host has no route for IPv4 or IPv6; those servers were not checked",
    )

    # -- the whole zone: transfer, walk, servers compared (watchdog.probe.coverage, .transfer,
    # .walk; watchdog.engine.coverage) -----------------------------------------------------------
    TRANSFER_REFUSED = "transfer_refused", _WARNING, "the transfer source refuses the zone transfer"
    TRANSFER_NOTAUTH = "transfer_notauth", _WARNING, "the transfer source is not authoritative"
    TRANSFER_TSIG_FAILED = (
        "transfer_tsig_failed",
        _WARNING,
        "the transfer's TSIG key or signature was rejected or did not verify",
    )
    TRANSFER_CUT = "transfer_cut", _WARNING, "the transfer stopped before its closing SOA"
    TRANSFER_MALFORMED = "transfer_malformed", _WARNING, "the transfer is not a well-formed AXFR"
    TRANSFER_FAILED = "transfer_failed", _WARNING, "the transfer source could not be asked"
    SERIAL_WENT_BACKWARDS = (
        "serial_went_backwards",
        _WARNING,
        "the transfer source serves an older serial than seen before",
    )
    WALK_IMPOSSIBLE = "walk_impossible", _OK, "an NSEC3 zone cannot be walked; apex checked"
    WALK_LIMIT_EXCEEDED = (
        "walk_limit_exceeded",
        _WARNING,
        "the NSEC chain has more names than walk_limit",
    )
    WALK_FAILED = "walk_failed", _WARNING, "the NSEC chain could not be followed to its end"
    STALE_SIGNATURES = (
        "stale_signatures",
        _WARNING,
        "a server serves the transfer's serial with other or older signatures",
    )

    # -- one DNS exchange (watchdog.probe.dnsio) ------------------------------------------------
    TIMEOUT = "timeout", _UNREACHABLE, "no answer within the query timeout"
    CONNECTION_REFUSED = "connection_refused", _UNREACHABLE, "the server refused the connection"
    CONNECTION_CLOSED = "connection_closed", _UNKNOWN, "the server closed TCP mid-answer"
    NETWORK_UNREACHABLE = "network_unreachable", _UNREACHABLE, "no route to the server"
    NETWORK_ERROR = "network_error", _UNREACHABLE, "the operating system refused to send"
    MALFORMED = "malformed", _UNKNOWN, "the answer is not a well-formed DNS message"
    MISMATCHED = "mismatched", _UNKNOWN, "the answer does not match the question or its id"
    LAME = "lame", _UNKNOWN, "the answer is not authoritative (AA bit clear)"
    REFUSED = "refused", _UNKNOWN, "the server answers REFUSED"
    SERVFAIL = "servfail", _UNKNOWN, "the server answers SERVFAIL"
    NOTIMP = "notimp", _UNKNOWN, "the server answers NOTIMP"
    FORMERR = "formerr", _UNKNOWN, "the server answers FORMERR"
    BAD_RCODE = "bad_rcode", _UNKNOWN, "the server answers another error rcode"
