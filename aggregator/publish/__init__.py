"""Publishing: selected entries rendered as Atom, RSS and JSON Feed files."""
