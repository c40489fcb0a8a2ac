"""NIR import: a NIR graph (neuromorphs/NIR) compiled like a traced model."""
