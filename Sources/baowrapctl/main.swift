print("baowrapctl: not yet")
