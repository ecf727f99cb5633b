"""Property-based fuzzing of the signer: whatever a unit writes as its ``csr``,
``policy.sign_csr`` returns a certificate or raises CSRRejected with a known code; nothing
else escapes (no ValueError, no UnicodeError, no crash in the parser).

Inputs: arbitrary bytes and text, arbitrary DER in a PEM envelope, and mutations of valid
CSR PEMs (bit flips in the DER, truncation, junk before and after, a second block, PEM
header lines, wrong or mismatched labels, re-wrapping, CRLF). Where the outcome is decided
by the PEM structure alone, the test asserts it exactly.
"""
import base64
import functools

from charms.layer.tls import pki, policy
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from hypothesis import given, settings
from hypothesis import strategies as st
from pki_helpers import csr_pem_from_der, make_ca

FUZZ = settings(max_examples=300, deadline=None, database=None)
KNOWN_CODES = frozenset({
    "too-large", "pem-structure", "unparseable", "key-type", "weak-signature",
    "bad-signature", "no-names", "san-type", "wildcard", "bad-name", "name-taken",
    "name-not-allowed", "key-reused"})
DNS, IP = "app-0.test", "10.0.0.1"
CLAIMS = policy.Claims.build(allowed_dns=[DNS, "app-0"], allowed_ips=[IP])
ALGORITHMS = ("ecdsa-p256", "ed25519", "rsa-2048")
WHITESPACE = b" \t\n\r\x0b\x0c"  # what the PEM check tolerates around the block


@functools.lru_cache(maxsize=None)
def _ca() -> pki.CertificateAuthority:
    return make_ca()


@functools.lru_cache(maxsize=None)
def _valid_pem(algorithm: str) -> bytes:
    key = pki.generate_private_key(algorithm)
    csr = pki.build_csr(key, "app/0", dns_names=[DNS, "app-0"], ip_addresses=[IP])
    return csr.public_bytes(serialization.Encoding.PEM)


def _der(pem: bytes) -> bytes:
    return x509.load_pem_x509_csr(pem).public_bytes(serialization.Encoding.DER)


def sign_or_reject(data):
    """The one property: a certificate for only the allowed names, or a known rejection.
    Returns None when a certificate was issued, else the rejection code."""
    ca = _ca()
    try:
        cert = policy.sign_csr(ca, data, CLAIMS, unit_name="app/0")
    except policy.CSRRejected as exc:
        assert exc.code in KNOWN_CODES, exc.code
        assert exc.reason and "\n" not in exc.reason
        return exc.code
    assert isinstance(cert, x509.Certificate)
    dns, ips = pki.certificate_names(cert)
    assert set(dns) <= CLAIMS.allowed_dns and set(ips) <= CLAIMS.allowed_ips
    pki.verify_certificate(cert, [ca.certificate], purpose="client")
    return None


valid_pems = st.sampled_from(ALGORITHMS).map(_valid_pem)


def test_the_unmutated_csrs_are_accepted():
    for algorithm in ALGORITHMS:
        assert sign_or_reject(_valid_pem(algorithm)) is None
        assert sign_or_reject(_valid_pem(algorithm).decode("ascii")) is None


# --- arbitrary input --------------------------------------------------------------------------

@FUZZ
@given(st.binary(max_size=4096))
def test_any_bytes(data):
    sign_or_reject(data)


@FUZZ
@given(st.text(max_size=2048))
def test_any_text(text):
    sign_or_reject(text)


@FUZZ
@given(st.binary(min_size=1, max_size=2048))
def test_any_der_in_a_well_formed_pem_envelope(der):
    assert sign_or_reject(csr_pem_from_der(der)) in KNOWN_CODES


@FUZZ
@given(st.binary(min_size=1, max_size=512))
def test_any_der_behind_a_plausible_sequence_header(body):
    # 0x30 + a correct length: gets the bytes past the outer ASN.1 framing.
    der = b"\x30" + (bytes([len(body)]) if len(body) < 128
                     else b"\x82" + len(body).to_bytes(2, "big")) + body
    assert sign_or_reject(csr_pem_from_der(der)) in KNOWN_CODES


# --- mutations of valid CSRs --------------------------------------------------------------------

@FUZZ
@given(valid_pems, st.lists(st.integers(min_value=0), min_size=1, max_size=8))
def test_bit_flips_in_the_der(pem, positions):
    der = bytearray(_der(pem))
    for position in positions:
        bit = position % (len(der) * 8)
        der[bit // 8] ^= 1 << (bit % 8)
    sign_or_reject(csr_pem_from_der(bytes(der)))


@FUZZ
@given(valid_pems, st.integers(min_value=0), st.binary(max_size=3))
def test_byte_replacement_in_the_der(pem, position, replacement):
    der = _der(pem)
    at = position % len(der)
    sign_or_reject(csr_pem_from_der(der[:at] + replacement + der[at + 1:]))


@FUZZ
@given(valid_pems, st.data())
def test_truncated_der_is_rejected(pem, data):
    der = _der(pem)
    cut = data.draw(st.integers(min_value=0, max_value=len(der) - 1))
    code = sign_or_reject(csr_pem_from_der(der[:cut]) if cut else b"")
    assert code in ("unparseable", "pem-structure")


@FUZZ
@given(valid_pems, st.data())
def test_truncated_pem_text_is_rejected_unless_only_whitespace_went(pem, data):
    cut = data.draw(st.integers(min_value=0, max_value=len(pem) - 1))
    code = sign_or_reject(pem[:cut])
    if pem[cut:].strip(WHITESPACE):
        assert code in KNOWN_CODES
    else:
        assert code is None


@FUZZ
@given(valid_pems, st.binary(max_size=64), st.binary(max_size=64))
def test_junk_before_or_after_the_block(pem, before, after):
    code = sign_or_reject(before + pem + after)
    if (before + after).strip(WHITESPACE):
        assert code == "pem-structure"
    else:
        assert code is None


@FUZZ
@given(valid_pems, valid_pems, st.sampled_from([b"", b"\n", b"junk\n"]))
def test_a_second_block_is_rejected(first, second, between):
    assert sign_or_reject(first + between + second) == "pem-structure"


@FUZZ
@given(valid_pems,
       st.lists(st.tuples(st.from_regex(r"[A-Za-z][A-Za-z-]{0,15}", fullmatch=True),
                          st.from_regex(r"[ -~]{0,40}", fullmatch=True)),
                min_size=1, max_size=3),
       st.booleans())
def test_pem_header_lines_are_rejected(pem, headers, blank_line):
    begin, rest = pem.split(b"\n", 1)
    lines = b"".join(f"{k}: {v}\n".encode() for k, v in headers)
    assert sign_or_reject(begin + b"\n" + lines + (b"\n" if blank_line else b"") + rest) == \
        "pem-structure"


LABELS = ["CERTIFICATE", "NEW CERTIFICATE REQUEST", "X509 CRL", "PRIVATE KEY",
          "certificate request", "CERTIFICATE  REQUEST", "CERTIFICATE REQUEST "]


@FUZZ
@given(valid_pems,
       st.one_of(st.sampled_from(LABELS), st.from_regex(r"[A-Z0-9 ]{0,30}", fullmatch=True)),
       st.sampled_from(["both", "begin", "end"]))
def test_wrong_or_mismatched_labels_are_rejected(pem, label, where):
    if label == "CERTIFICATE REQUEST":
        return
    old = b"CERTIFICATE REQUEST-----"
    begin, body_end = pem.split(b"\n", 1)
    body, end = body_end.rsplit(b"-----END ", 1)
    new = label.encode() + b"-----"
    if where in ("both", "begin"):
        begin = begin.replace(old, new)
    if where in ("both", "end"):
        end = end.replace(old, new)
    assert sign_or_reject(begin + b"\n" + body + b"-----END " + end) == "pem-structure"


def _rewrap(pem: bytes, width: int, newline: bytes = b"\n") -> bytes:
    body = base64.b64encode(_der(pem))
    lines = [body[i:i + width] for i in range(0, len(body), width)]
    return newline.join([b"-----BEGIN CERTIFICATE REQUEST-----", *lines,
                         b"-----END CERTIFICATE REQUEST-----", b""])


@FUZZ
@given(valid_pems, st.integers(min_value=1, max_value=200), st.sampled_from([b"\n", b"\r\n"]))
def test_line_width_and_endings(pem, width, newline):
    """Any width up to 76 columns (RFC 7468 lax), LF or CRLF: accepted; longer lines: not."""
    code = sign_or_reject(_rewrap(pem, width, newline))
    body_len = len(base64.b64encode(_der(pem)))
    if width <= 76 or body_len <= 76:
        assert code is None
    else:
        assert code == "pem-structure"


@FUZZ
@given(valid_pems, st.data())
def test_whitespace_inside_the_body_is_rejected(pem, data):
    lines = pem.split(b"\n")
    index = data.draw(st.integers(min_value=1, max_value=len(lines) - 3))
    junk = data.draw(st.sampled_from([b" ", b"\t", b"\n", b" \n"]))
    line = lines[index]
    at = data.draw(st.integers(min_value=0, max_value=len(line)))
    lines[index] = line[:at] + junk + line[at:]
    code = sign_or_reject(b"\n".join(lines))
    # Splitting a line in two (a newline inside it) keeps the body valid; anything else
    # (blank lines, spaces, tabs) does not.
    if junk == b"\n" and 0 < at < len(line):
        assert code is None
    else:
        assert code == "pem-structure"


@FUZZ
@given(valid_pems, st.text(alphabet=st.characters(min_codepoint=0x80), min_size=1,
                           max_size=8))
def test_non_ascii_text_anywhere_is_rejected(pem, junk):
    text = pem.decode("ascii")
    assert sign_or_reject(junk + text) == "pem-structure"
    assert sign_or_reject(text.replace("\n", junk + "\n", 1)) == "pem-structure"


def _pem_of_body(body: bytes) -> bytes:
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return (b"-----BEGIN CERTIFICATE REQUEST-----\n" + b"\n".join(lines)
            + b"\n-----END CERTIFICATE REQUEST-----\n")


@FUZZ
@given(valid_pems, st.integers(min_value=1), st.sampled_from([b"=", b"==", b"===="]))
def test_data_after_padding_is_rejected(pem, position, padding):
    """Padding in the middle of the body (data smuggled after it) is refused."""
    body = base64.b64encode(_der(pem))
    at = 4 * (position % (len(body) // 4 - 1) + 1)  # a quantum boundary inside the body
    assert sign_or_reject(_pem_of_body(body[:at] + padding + body[at:])) == "pem-structure"


def test_superfluous_final_padding_is_tolerated():
    """Documented leniency (base64.b64decode): '=' after a complete final quantum is
    ignored. Harmless: the DER, and so everything checked and signed, is unchanged."""
    for algorithm in ALGORITHMS:
        body = base64.b64encode(_der(_valid_pem(algorithm)))
        if not body.endswith(b"="):
            assert sign_or_reject(_pem_of_body(body + b"==")) is None


def test_an_oversized_input_is_rejected_before_parsing():
    pem = _valid_pem("ecdsa-p256")
    padded = pem + b" " * (policy.MAX_CSR_BYTES - len(pem) + 1)
    assert sign_or_reject(padded) == "too-large"
    assert sign_or_reject(pem + b" " * (policy.MAX_CSR_BYTES - len(pem))) is None
