"""The files and texts Régua reads and writes, pure: parsers and renderers."""
