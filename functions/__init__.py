"""The functions as SCF runs them: functions/<name>/index.py (installed as package data of `vodfunctions`, so
that the testing kit can load the real handlers wherever the project is installed)."""
