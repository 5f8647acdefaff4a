"""An emulator of fal.ai's queue API (the protocol fal-client 1.0.3 speaks), with injectable faults.

The service under test reaches it with the real ``fal_client`` over TLS; the harness steers its
behaviour and reads its request log through the ``/_emulator/`` admin API.
"""

from chaos.emulators.fal.app import create_app

__all__ = ["create_app"]
