"""One module per ``mipcheck`` sub-command; see ``mipcheck.cli.COMMANDS``."""
