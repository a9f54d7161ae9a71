"""An AFTER_COMMIT_HOOK module that fails as it is imported (a setting of the app's missing, say)."""

raise RuntimeError("needs APP_DB")
