"""Results for people: DataFrames, files."""
