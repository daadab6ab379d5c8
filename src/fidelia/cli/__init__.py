"""The operator's command line: `fidelia`."""
