"""One module per subcommand: its body (validation, the calls into the library, what it
prints); sandbox/cli.py only declares the options and maps errors to exit codes."""
