"""Service tier: the backends against local services speaking the real protocols (boto3 to
the fake AWS services, HTTP model servers); no database."""
