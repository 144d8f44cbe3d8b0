"""Pure monitoring engine: schema, profiles, drift, quality, performance, slices, detectors."""
