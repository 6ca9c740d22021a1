from sandboxtui.cli import entry

entry()
