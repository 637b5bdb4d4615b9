"""AWS services through boto3: Comprehend, SageMaker Runtime and Bedrock Runtime, and
what they share (the client, the translation of botocore's errors)."""
