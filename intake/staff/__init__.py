"""What people do with the evidence, shared by the command line and the web view."""
