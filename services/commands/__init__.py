"""The subcommands of the C{netservices} command line, one module each."""
