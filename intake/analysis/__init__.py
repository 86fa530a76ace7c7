"""Pure analysis of response texts: campaigns (shared templates) and revised versions."""
