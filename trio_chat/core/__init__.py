"""The chat's rules, with no wire format in them: doors decode a request, call here, encode."""
