"""scripts/build's CA directory (certifi/hashed/ in a bundle that ships certifi): each CA in a file named as
OpenSSL names it, so that a TLS check given the directory finds a CA by its subject (shared/vod_cloud_api.py's
tls_context reads only that one). OpenSSL itself is the referee: its `x509 -subject_hash`, and its handshakes."""

from __future__ import annotations

import datetime
import re
import socket
import ssl
import subprocess
import threading
from pathlib import Path

import certifi
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID

from tests.deploy.scripts import load_script

BUILD = load_script("build")
CERTIFI = Path(certifi.where()).read_text(encoding="ascii")
PEM = serialization.Encoding.PEM


def _openssl_hash(pem: Path) -> str:
    return subprocess.run(
        ["openssl", "x509", "-subject_hash", "-noout", "-in", str(pem)], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_every_certifi_ca_gets_a_file_named_as_openssl_names_it(tmp_path: Path) -> None:
    BUILD.hash_ca_directory(CERTIFI, tmp_path)
    files = sorted(tmp_path.iterdir())
    assert len(files) == CERTIFI.count("-----BEGIN CERTIFICATE-----") > 100
    assert [f.name.partition(".")[0] for f in files] == [_openssl_hash(f) for f in files]
    assert all(re.fullmatch(r"[0-9a-f]{8}\.\d", f.name) for f in files)


Attribute = x509.NameAttribute[str]
Part = Attribute | list[Attribute]  # one RDN: an attribute, or several in one SET


def _attribute(oid: x509.ObjectIdentifier, value: str, kind: _ASN1Type) -> Attribute:
    return x509.NameAttribute(oid, value, _type=kind)


CN, O = NameOID.COMMON_NAME, NameOID.ORGANIZATION_NAME  # noqa: E741
SUBJECTS: dict[str, list[Part]] = {
    "printable": [_attribute(CN, "Example Root CA", _ASN1Type.PrintableString)],
    "case-and-spaces": [_attribute(CN, " \t Mixed   CASE\n\vRoot\f\r CA  ", _ASN1Type.UTF8String)],
    "non-ascii-kept-as-is": [_attribute(CN, "ÉCOLE Ünïcode Root ÄÖ 漢字", _ASN1Type.UTF8String)],
    "bmp": [_attribute(CN, "BMP Root Ünï", _ASN1Type.BMPString)],
    "universal": [_attribute(CN, "Universal Root 😀", _ASN1Type.UniversalString)],
    "t61": [_attribute(CN, "T61 Café Root", _ASN1Type.T61String)],
    "ia5-and-more": [
        _attribute(NameOID.COUNTRY_NAME, "CN", _ASN1Type.PrintableString),
        _attribute(NameOID.EMAIL_ADDRESS, "Root@Example.COM", _ASN1Type.IA5String),
        _attribute(O, "A" * 300, _ASN1Type.UTF8String),  # long-form lengths
    ],
    # its canonical pairs sort in another order than as sent (the first is the longer as sent, the shorter after)
    "multi-valued-rdn-reordered": [
        [
            _attribute(O, "Z" + " " * 30 + "Y", _ASN1Type.UTF8String),
            _attribute(CN, "Alpha Beta Gamma", _ASN1Type.UTF8String),
        ]
    ],
    "multi-valued-rdn": [
        [_attribute(O, "Zeta Org", _ASN1Type.UTF8String), _attribute(CN, "Alpha", _ASN1Type.UTF8String)]
    ],
}


def _name(parts: list[Part]) -> x509.Name:
    return x509.Name([x509.RelativeDistinguishedName(p if isinstance(p, list) else [p]) for p in parts])


def _certificate(
    subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey, signer: ec.EllipticCurvePrivateKey, ca: bool
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    # Key usage as RFC 5280 has it: Python 3.13's default context checks it (VERIFY_X509_STRICT)
    usage = dict.fromkeys(("content_commitment", "key_encipherment", "data_encipherment", "key_agreement"), False)
    usage.update(digital_signature=not ca, key_cert_sign=ca, crl_sign=ca, encipher_only=False, decipher_only=False)
    builder = builder.add_extension(x509.KeyUsage(**usage), critical=True)
    if ca:
        builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    else:  # which of two CAs of one name signed it: OpenSSL tells them apart by this, as real chains have it
        authority = x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key())
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        builder = builder.add_extension(authority, critical=False)
    return builder.sign(signer, hashes.SHA256())


def _handshake(capath: Path, leaf: x509.Certificate, key: ec.EllipticCurvePrivateKey, tmp_path: Path) -> None:
    """A TLS handshake with a client that trusts only `capath`, to a server presenting `leaf`."""
    (tmp_path / "leaf.pem").write_bytes(leaf.public_bytes(PEM))
    (tmp_path / "leaf.key").write_bytes(
        key.private_bytes(PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(tmp_path / "leaf.pem", tmp_path / "leaf.key")
    client_side = ssl.create_default_context(capath=str(capath))
    ours, theirs = socket.socketpair()

    def serve() -> None:
        try:
            server_side.wrap_socket(theirs, server_side=True).close()
        except (ssl.SSLError, OSError):
            theirs.close()  # the client's refusal is what the test looks at

    serving = threading.Thread(target=serve)
    serving.start()
    try:
        with ours:
            client_side.wrap_socket(ours, server_hostname="localhost").close()
    finally:
        serving.join(5)


@pytest.mark.parametrize("subject", SUBJECTS.values(), ids=SUBJECTS.keys())
def test_a_tls_check_finds_a_ca_by_the_name_of_its_file(tmp_path: Path, subject: list[Part]) -> None:
    # GIVEN a CA of this subject, among certifi's, after another CA of the very same subject (a .0 and a .1)
    name = _name(subject)
    keys = [ec.generate_private_key(ec.SECP256R1()) for _ in range(3)]
    twin, ca = (_certificate(name, name, key, key, ca=True) for key in keys[:2])
    leaf = _certificate(_name([_attribute(CN, "localhost", _ASN1Type.UTF8String)]), name, keys[2], keys[1], ca=False)
    (tmp_path / "ca.pem").write_bytes(ca.public_bytes(PEM))
    assert BUILD.subject_hash(ca.public_bytes(serialization.Encoding.DER)) == _openssl_hash(tmp_path / "ca.pem")
    hashed = tmp_path / "hashed"
    BUILD.hash_ca_directory(CERTIFI + twin.public_bytes(PEM).decode() + ca.public_bytes(PEM).decode(), hashed)
    # THEN a client trusting the directory alone accepts a certificate it signed; and refuses it without that CA
    _handshake(hashed, leaf, keys[2], tmp_path)
    for file in hashed.iterdir():
        if file.read_text() == ca.public_bytes(PEM).decode():
            file.unlink()
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(hashed, leaf, keys[2], tmp_path)


def test_the_callback_bundle_has_certifis_cas_one_per_file(bundles: Path) -> None:
    shipped = bundles / "callback" / "certifi"
    files = sorted((shipped / "hashed").iterdir())
    assert len(files) == (shipped / "cacert.pem").read_text(encoding="ascii").count("-----BEGIN CERTIFICATE-----")
    assert [f.name.partition(".")[0] for f in files] == [_openssl_hash(f) for f in files]
