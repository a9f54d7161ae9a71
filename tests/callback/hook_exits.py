"""An AFTER_COMMIT_HOOK module that calls sys.exit() as it is imported, its message quoting a URL."""

import sys

sys.exit("needs APP_DB: cannot open postgresql://audit:pw-of-the-hook@db/audit")
