// dedupe: being written
