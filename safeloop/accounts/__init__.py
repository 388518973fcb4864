"""Accounts and authentication: who is signing.

``passwords`` (Argon2id, login throttling), ``tokens`` (personal API tokens, stored as SHA-256
only), ``store`` (accounts, their audit rows, the org file's sync) and ``principal`` (the
authenticated person every channel hands on). Every act is an audit row of entity ``account``.
"""
