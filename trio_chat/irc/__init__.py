"""The IRC door's sans-IO pieces: line framing, message codec, text helpers, numerics."""
