"""What every layer shares and nothing else in `rag` is imported by: the dataclasses that flow between
layers (`types`), the error tree (`errors`) and the one settings object (`settings`)."""
