"""The subcommands of the C{netservices} command, one module each."""
