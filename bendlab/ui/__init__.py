"""What a person touches (layer 5, the top): the command line (`cli`), the notebook widgets (`widgets`), the
paper's figures (`figures`, drawn by `plots`) and recipe files (`recipe`). Nothing below imports it."""
