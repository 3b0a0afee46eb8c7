"""The emulated Azure Key Vault data plane: secrets, certificates and their keys.

:class:`KeyVault` (``emu.vault``) arranges and inspects the vault; its routes are served on
the emulator's HTTPS server as endpoint ``"keyvault"``. The modules, from the bottom up:
``_store`` (secret versions), ``_material`` (certificate key + X.509), ``_keys`` (JWK, sign),
``_wire``/``_objects_wire`` (JSON shapes), ``_errors``, ``_auth`` (bearer token checks),
``_policies`` (access policies), ``_gate`` (the checks before every operation),
``_secrets_http``/``_objects_http`` (the handlers) and ``_vault`` (the facade).
"""

from ._gate import ENDPOINT, is_vault_path
from ._store import SecretVersion
from ._vault import KeyVault, vault_for

__all__ = ["ENDPOINT", "KeyVault", "SecretVersion", "is_vault_path", "vault_for"]
