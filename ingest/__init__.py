"""Turn files into chunks and keep the knowledge base in step with them."""
