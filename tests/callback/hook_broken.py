"""An AFTER_COMMIT_HOOK module that fails as it is imported (its sink cannot be reached, say)."""

raise RuntimeError("needs APP_DB: cannot open postgresql://audit:pw-of-the-hook@db/audit")
