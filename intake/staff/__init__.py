"""What staff do and see, shared by the command line and the web view."""
