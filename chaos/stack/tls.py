"""A throwaway certificate authority for the emulators' TLS endpoints.

fal-client hard-codes ``https://``, so the FAL emulator must serve TLS with a certificate
that the service trusts through ``SSL_CERT_FILE``. The certificate names 127.0.0.1 and
localhost, which is also what the Toxiproxy listeners bind, so TLS through a TCP proxy works.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import certifi
import trustme


@dataclass(frozen=True)
class TlsFiles:
    """PEM files of one throwaway CA and one server certificate issued by it."""

    ca_cert: Path  # the CA alone
    ca_bundle: Path  # the CA plus certifi's roots, for SSL_CERT_FILE (it replaces the trust store)
    server_cert: Path  # server certificate chain
    server_key: Path


def make_test_ca(directory: Path, *extra_hosts: str) -> TlsFiles:
    """Create a CA and a server certificate for 127.0.0.1, localhost and ``extra_hosts`` (e.g. a
    container's name) in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="genchaos test CA")
    server = ca.issue_cert("127.0.0.1", "localhost", *extra_hosts)
    files = TlsFiles(
        ca_cert=directory / "ca.pem",
        ca_bundle=directory / "ca-bundle.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server-key.pem",
    )
    ca.cert_pem.write_to_path(str(files.ca_cert))
    files.ca_bundle.write_bytes(ca.cert_pem.bytes() + b"\n" + Path(certifi.where()).read_bytes())
    server.private_key_pem.write_to_path(str(files.server_key))
    server.cert_chain_pems[0].write_to_path(str(files.server_cert))
    for extra in server.cert_chain_pems[1:]:
        extra.write_to_path(str(files.server_cert), append=True)
    return files
