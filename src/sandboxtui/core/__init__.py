"""The enforcement core. Never imports Textual."""
