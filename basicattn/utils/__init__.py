"""Small helpers shared by the package (image io, colour, imresize ...)."""
