"""The HTTP edge of the functions: SCF trigger events in (triggers), one Request/Response model (model),
strict JSON bodies (body), CORS (cors), and `serve` (serve), where errors become answers and each
request gets its one log line."""
