"""sandboxtui: run commands in a Linux sandbox and see exactly what it allows."""
