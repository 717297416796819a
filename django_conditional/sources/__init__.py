"""Where validators come from: response content, files, resource versions and timestamps."""
