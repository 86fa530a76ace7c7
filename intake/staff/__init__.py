"""What staff do, shared by the command line and the web view."""
