"""The CDK app that deploys Switchboard's topology to AWS (entry point: infra.aws.app)."""
