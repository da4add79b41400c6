"""Pictures made from images and results: side-by-side panels, comparison
figures, validation comparison images and trade-off plots."""
