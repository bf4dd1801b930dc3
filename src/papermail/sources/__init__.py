"""Fetching: arXiv listings (RSS), the arXiv API, and Hugging Face daily papers, into papers and signals.

``http`` is the polite HTTP client, ``normalise`` turns feed text into clean text, ``arxiv_rss``,
``arxiv_api`` and ``huggingface`` turn one response into records, ``ingest`` stores records in bulk,
and ``runner`` ties them together into one fetch run per source.
"""
