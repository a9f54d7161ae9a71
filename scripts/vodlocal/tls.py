"""A TLS front for the local emulator, so a real browser reaches it as vod2.qcloud.com.

vod-js-sdk-v6 hard-codes https://vod2.qcloud.com for VOD's upload API (and COS hosts under myqcloud.com).
A test browser is pointed at loopback with Chromium's --host-resolver-rules and accepts this self-signed
certificate with --ignore-certificate-errors; nothing is installed into any trust store.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from pathlib import Path

VOD_UPLOAD_HOSTS = ("vod2.qcloud.com", "vod2.dnsv1.com")
COS_HOSTS = ("*.myqcloud.com", "*.tencentcos.cn")


def self_signed(directory: Path, hosts: tuple[str, ...] = (*VOD_UPLOAD_HOSTS, "localhost")) -> tuple[Path, Path]:
    """(cert.pem, key.pem) in directory, made once: an EC P-256 key and a 1-year certificate for `hosts` (the
    upload hosts and localhost) and 127.0.0.1."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    if cert.exists() and key.exists():
        return cert, key
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vod-emulator (local, self-signed)")])
    now = datetime.datetime.now(datetime.timezone.utc)
    names: list[x509.GeneralName] = [x509.DNSName(h) for h in hosts]
    names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(private, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(
            private.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return cert, key


def chromium_flags(tls_port: int, emulator_port: int) -> list[str]:
    """Flags that send a Chromium's upload traffic to the local emulator: VOD's https host to the TLS
    front; COS hosts to the plain emulator (cos-js-sdk-v5 uses http:// when the page itself is http)."""
    rules = [f"MAP {host} 127.0.0.1:{tls_port}" for host in VOD_UPLOAD_HOSTS]
    rules += [f"MAP {host} 127.0.0.1:{emulator_port}" for host in COS_HOSTS]
    return [f"--host-resolver-rules={','.join(rules)}", "--ignore-certificate-errors"]
