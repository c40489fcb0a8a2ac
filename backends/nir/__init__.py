"""NIR export: the folded float reference graph of an artifact as a NIR graph."""
