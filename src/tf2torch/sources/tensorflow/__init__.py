"""Reader of TensorFlow graphs: SavedModels, frozen GraphDefs and TF1 meta graphs."""
