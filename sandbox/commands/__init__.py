"""One module per subcommand that has more to it than a call into the library."""
