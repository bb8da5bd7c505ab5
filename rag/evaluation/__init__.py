"""Quality on a BEIR folder: retrieval metrics (nDCG, recall, MRR) and answer scores."""
